public import Instrumentation

/// The identity of a span as it travels in a `ServiceContext`: trace id, span id, the parent's span
/// id, the W3C trace flags and trace state.
///
/// Set by ``OTLPTracer`` on every span's context (recording or not) and by its `extract` on the
/// context of an incoming message; read by `inject`, by child spans and by
/// ``OTLPTracer/loggingMetadataProvider``.
public struct OTLPSpanContext: Sendable, Hashable {
    /// The 16-byte trace id.
    public var traceID: OTLPTraceID
    /// The 8-byte span id (never zero).
    public var spanID: UInt64
    /// The parent's span id, zero for a root span.
    public var parentSpanID: UInt64
    /// W3C trace flags; bit 0 is `sampled`.
    public var traceFlags: UInt8
    /// The W3C `tracestate` header value, empty when there is none.
    public var traceState: String
    /// Whether this context came from another process (extracted from headers).
    public var isRemote: Bool
    /// Whether the parent came from another process (OTLP's span flag IS_REMOTE).
    var parentIsRemote = false

    /// Creates a span context.
    public init(traceID: OTLPTraceID, spanID: UInt64, parentSpanID: UInt64 = 0, traceFlags: UInt8, traceState: String = "", isRemote: Bool = false) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceFlags = traceFlags
        self.traceState = traceState
        self.isRemote = isRemote
    }

    /// Whether the trace is sampled (trace flag bit 0).
    public var isSampled: Bool { traceFlags & 0x01 != 0 }

    /// The span id as 16 lowercase hex digits.
    public var spanIDHex: String { Hex.string(spanID) }
}

/// The `ServiceContext` key under which ``OTLPTracer`` keeps the ``OTLPSpanContext``.
public enum OTLPSpanContextKey: ServiceContextKey {
    public typealias Value = OTLPSpanContext
    public static var nameOverride: String? { "otlp-span-context" }
}

extension ServiceContext {
    /// The OTLP span context of the current span, if ``OTLPTracer`` started or extracted one.
    public var otlpSpanContext: OTLPSpanContext? {
        get { self[OTLPSpanContextKey.self] }
        set { self[OTLPSpanContextKey.self] = newValue }
    }
}
