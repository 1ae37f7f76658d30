import Tracing

/// A finished span, as `courier-demo --spans-json` writes it and the waterfall draws it.
public struct RecordedSpan: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case producer, consumer, client, server, `internal`

        init(_ kind: SpanKind) {
            switch kind {
            case .producer: self = .producer
            case .consumer: self = .consumer
            case .client: self = .client
            case .server: self = .server
            case .internal: self = .internal
            }
        }
    }

    /// An attribute value: the scalar and array kinds OpenTelemetry has.
    public enum Value: Sendable, Hashable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case array([Value])
    }

    public struct Link: Sendable, Hashable {
        public var traceID: String
        public var spanID: String
        public var attributes: [String: Value]
    }

    public struct Status: Sendable, Hashable {
        /// `ok`, `error` or `unset`.
        public var code: String
        public var message: String

        init(_ status: SpanStatus?) {
            switch status?.code {
            case .ok: code = "ok"
            case .error: code = "error"
            case nil: code = "unset"
            }
            message = status?.message ?? ""
        }
    }

    public var name: String
    public var kind: Kind
    public var traceID: String
    public var spanID: String
    public var parentSpanID: String?
    public var startTimeUnixNano: UInt64
    public var endTimeUnixNano: UInt64
    public var attributes: [String: Value]
    public var links: [Link]
    public var status: Status
}

extension [String: RecordedSpan.Value] {
    init(_ attributes: SpanAttributes) {
        var values: [String: RecordedSpan.Value] = [:]
        attributes.forEach { key, attribute in values[key] = RecordedSpan.Value(attribute) }
        self = values
    }
}

extension RecordedSpan.Value {
    init(_ attribute: SpanAttribute) {
        switch attribute {
        case .int32(let value): self = .int(Int64(value))
        case .int64(let value): self = .int(value)
        case .int32Array(let values): self = .array(values.map { .int(Int64($0)) })
        case .int64Array(let values): self = .array(values.map { .int($0) })
        case .double(let value): self = .double(value)
        case .doubleArray(let values): self = .array(values.map { .double($0) })
        case .bool(let value): self = .bool(value)
        case .boolArray(let values): self = .array(values.map { .bool($0) })
        case .string(let value): self = .string(value)
        case .stringArray(let values): self = .array(values.map { .string($0) })
        case .stringConvertible(let value): self = .string(String(describing: value))
        case .stringConvertibleArray(let values): self = .array(values.map { .string(String(describing: $0)) })
        default: self = .string(String(describing: attribute))
        }
    }
}
