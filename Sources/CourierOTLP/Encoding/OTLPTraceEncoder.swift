import Tracing

/// Encodes batches of ended spans as an OTLP `ExportTraceServiceRequest` (protobuf), the body of
/// both the OTLP/HTTP request and the OTLP/gRPC call.
///
/// Field numbers are those of opentelemetry-proto v1 (`collector/trace/v1/trace_service.proto`,
/// `trace/v1/trace.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`). Attribute
/// values map as swift-otel maps them: 32- and 64-bit integers to `int_value`, `stringConvertible`
/// to its description, arrays to an `ArrayValue`.
struct OTLPTraceEncoder: Sendable {
    /// The resource message's body, encoded once.
    private let resource: [UInt8]
    /// The instrumentation scope message's body, encoded once.
    private let scope: [UInt8]

    init(resourceAttributes: [(String, SpanAttribute)], scopeName: String, scopeVersion: String) {
        var writer = ProtobufWriter(capacity: 256)
        for (key, value) in resourceAttributes {
            writer.keyValue(1, key, value)
        }
        resource = writer.bytes
        var scopeWriter = ProtobufWriter(capacity: 64)
        scopeWriter.stringField(1, scopeName)
        if !scopeVersion.isEmpty { scopeWriter.stringField(2, scopeVersion) }
        scope = scopeWriter.bytes
    }

    /// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource, scope_spans: [ScopeSpans { scope, spans }] }] }`.
    func encode(_ spans: [FinishedSpan]) -> [UInt8] {
        var writer = ProtobufWriter(capacity: 128 + spans.count * 400)
        writer.messageField(1) { resourceSpans in
            resourceSpans.tag(1, .lengthDelimited)
            resourceSpans.varint(UInt64(resource.count))
            resourceSpans.appendRaw(resource)
            resourceSpans.messageField(2) { scopeSpans in
                scopeSpans.tag(1, .lengthDelimited)
                scopeSpans.varint(UInt64(scope.count))
                scopeSpans.appendRaw(scope)
                for span in spans {
                    scopeSpans.messageField(2) { $0.span(span) }
                }
            }
        }
        return writer.bytes
    }

    /// The `ExportTracePartialSuccess` of a response: spans the collector rejected, and why.
    static func decodePartialSuccess(_ response: [UInt8]) throws -> (rejected: Int64, message: String) {
        var reader = ProtobufReader(response)
        var rejected: Int64 = 0
        var message = ""
        while !reader.isAtEnd {
            let (field, wireType) = try reader.tag()
            guard field == 1, wireType == 2 else {
                try reader.skip(wireType: wireType)
                continue
            }
            var partial = ProtobufReader(try reader.lengthDelimited())
            while !partial.isAtEnd {
                let (inner, innerType) = try partial.tag()
                switch (inner, innerType) {
                case (1, 0): rejected = Int64(bitPattern: try partial.varint())
                case (2, 2): message = String(decoding: try partial.lengthDelimited(), as: UTF8.self)
                default: try partial.skip(wireType: innerType)
                }
            }
        }
        return (rejected, message)
    }
}

extension ProtobufWriter {
    /// `Span`.
    mutating func span(_ span: FinishedSpan) {
        let context = span.context
        traceIDField(1, context.traceID)
        spanIDField(2, context.spanID)
        if !context.traceState.isEmpty { stringField(3, context.traceState) }
        if context.parentSpanID != 0 { spanIDField(4, context.parentSpanID) }
        stringField(5, span.name)
        varintField(6, Self.kind(span.kind))
        fixed64Field(7, span.startTime)
        fixed64Field(8, span.endTime)
        span.attributes.forEach { key, value in keyValue(9, key, value) }
        for event in span.events {
            messageField(11) { eventWriter in
                eventWriter.fixed64Field(1, event.nanosecondsSinceEpoch)
                eventWriter.stringField(2, event.name)
                event.attributes.forEach { key, value in eventWriter.keyValue(3, key, value) }
            }
        }
        for link in span.links {
            guard let linked = link.context.otlpSpanContext else { continue }
            messageField(13) { linkWriter in
                linkWriter.traceIDField(1, linked.traceID)
                linkWriter.spanIDField(2, linked.spanID)
                if !linked.traceState.isEmpty { linkWriter.stringField(3, linked.traceState) }
                link.attributes.forEach { key, value in linkWriter.keyValue(4, key, value) }
                linkWriter.fixed32Field(6, Self.flags(linked, remote: linked.isRemote))
            }
        }
        if let status = span.status {
            messageField(15) { statusWriter in
                if status.code == .error, let message = status.message, !message.isEmpty {
                    statusWriter.stringField(2, message)
                }
                statusWriter.varintField(3, status.code == .ok ? 1 : 2)
            }
        }
        // Trace flags, plus "we know whether the parent is remote" and "it is".
        fixed32Field(16, Self.flags(context, remote: context.parentIsRemote))
    }

    /// OTLP span flags: the W3C trace flags in bits 0–7, HAS_IS_REMOTE (bit 8), IS_REMOTE (bit 9).
    private static func flags(_ context: OTLPSpanContext, remote: Bool) -> UInt32 {
        UInt32(context.traceFlags) | 0x100 | (remote ? 0x200 : 0)
    }

    private static func kind(_ kind: SpanKind) -> UInt64 {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    /// `KeyValue { key, value: AnyValue }`; attribute kinds OTLP cannot carry are left out.
    ///
    /// Strings and integers, nearly every attribute a message's span has, are written with their
    /// lengths worked out first (each is a sum of the parts' sizes), straight into place.
    mutating func keyValue(_ field: UInt32, _ key: String, _ value: SpanAttribute) {
        switch value {
        case .string(let string):
            stringKeyValue(field, key, string)
            return
        case .int64(let int):
            integerKeyValue(field, key, UInt64(bitPattern: int))
            return
        case .int32(let int):
            integerKeyValue(field, key, UInt64(bitPattern: Int64(int)))
            return
        default:
            break
        }
        switch value {
        case .int32, .int64, .double, .bool, .string, .stringConvertible,
            .int32Array, .int64Array, .doubleArray, .boolArray, .stringArray, .stringConvertibleArray:
            break
        default:
            return
        }
        messageField(field) { pair in
            pair.stringField(1, key)
            pair.messageField(2) { $0.anyValue(value) }
        }
    }

    /// `KeyValue { key, value: AnyValue { string_value } }`, lengths computed ahead.
    private mutating func stringKeyValue(_ field: UInt32, _ key: String, _ value: String) {
        let valueLength = value.utf8.count
        scalarKeyValue(field, key, anyValueLength: 1 + Self.varintSize(UInt64(valueLength)) + valueLength) { $0.stringField(1, value) }
    }

    /// `KeyValue { key, value: AnyValue { int_value } }`, lengths computed ahead.
    private mutating func integerKeyValue(_ field: UInt32, _ key: String, _ value: UInt64) {
        scalarKeyValue(field, key, anyValueLength: 1 + Self.varintSize(value)) { $0.varintField(3, value) }
    }

    /// A `KeyValue` whose `AnyValue` is `anyValueLength` bytes long, written by `writeValue`.
    @inline(__always)
    private mutating func scalarKeyValue(_ field: UInt32, _ key: String, anyValueLength: Int, _ writeValue: (inout ProtobufWriter) -> Void) {
        let keyLength = key.utf8.count
        let pairLength = 1 + Self.varintSize(UInt64(keyLength)) + keyLength + 1 + Self.varintSize(UInt64(anyValueLength)) + anyValueLength
        tag(field, .lengthDelimited)
        varint(UInt64(pairLength))
        stringField(1, key)
        tag(2, .lengthDelimited)
        varint(UInt64(anyValueLength))
        writeValue(&self)
    }

    /// How many bytes `value` takes as a varint.
    @inline(__always)
    static func varintSize(_ value: UInt64) -> Int {
        // One byte per started group of 7 bits; zero takes one.
        max(1, (64 - value.leadingZeroBitCount + 6) / 7)
    }

    /// `AnyValue`'s oneof: string 1, bool 2, int 3, double 4, array 5.
    private mutating func anyValue(_ value: SpanAttribute) {
        switch value {
        case .int32(let int): varintField(3, UInt64(bitPattern: Int64(int)))
        case .int64(let int): varintField(3, UInt64(bitPattern: int))
        case .double(let double): doubleField(4, double)
        case .bool(let bool): varintField(2, bool ? 1 : 0)
        case .string(let string): stringField(1, string)
        case .stringConvertible(let convertible): stringField(1, convertible.description)
        case .int32Array(let items): array(items) { $0.varintField(3, UInt64(bitPattern: Int64($1))) }
        case .int64Array(let items): array(items) { $0.varintField(3, UInt64(bitPattern: $1)) }
        case .doubleArray(let items): array(items) { $0.doubleField(4, $1) }
        case .boolArray(let items): array(items) { $0.varintField(2, $1 ? 1 : 0) }
        case .stringArray(let items): array(items) { $0.stringField(1, $1) }
        case .stringConvertibleArray(let items): array(items) { $0.stringField(1, $1.description) }
        default: break
        }
    }

    /// `AnyValue { array_value: ArrayValue { values: [AnyValue] } }`.
    private mutating func array<Element>(_ items: [Element], _ write: (inout ProtobufWriter, Element) -> Void) {
        messageField(5) { array in
            for item in items {
                array.messageField(1) { write(&$0, item) }
            }
        }
    }
}
