import Tracing

/// An ended span as the export queue keeps it: everything the OTLP `Span` message needs.
struct FinishedSpan: Sendable {
    var name: String
    var kind: SpanKind
    var context: OTLPSpanContext
    var startTime: UInt64
    var endTime: UInt64
    var attributes: SpanAttributes
    var events: [SpanEvent]
    var links: [SpanLink]
    var status: SpanStatus?
}
