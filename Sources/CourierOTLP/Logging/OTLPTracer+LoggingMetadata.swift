public import Logging
import Instrumentation

extension OTLPTracer {
    /// Puts the current span's ids into every log record, as swift-otel's
    /// `OTel.makeLoggingMetadataProvider()` does and with the same keys: `trace_id` (32 hex digits),
    /// `span_id` (16 hex digits) and `trace_flags` (the W3C flags as a decimal number, `1` when
    /// sampled).
    ///
    /// The current span is the one in `ServiceContext.current` (a Courier handler runs with its
    /// process span current). Outside a span it adds nothing.
    ///
    /// ```swift
    /// LoggingSystem.bootstrap(StreamLogHandler.standardOutput, metadataProvider: OTLPTracer.loggingMetadataProvider)
    /// ```
    public static let loggingMetadataProvider = Logger.MetadataProvider {
        guard let context = ServiceContext.current?.otlpSpanContext else { return [:] }
        return [
            "trace_id": "\(context.traceID.description)",
            "span_id": "\(Hex.string(context.spanID))",
            "trace_flags": "\(context.traceFlags)",
        ]
    }
}
