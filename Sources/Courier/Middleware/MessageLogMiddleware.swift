import Instrumentation
import Logging
import Tracing

/// FastStream's access log: a "received" line when a handler starts and a "processed" line
/// (with the duration, and the error when it failed) when it ends, each carrying the
/// destination, the message and correlation ids and the trace id.
///
/// Enabled by ``BrokerOptions/messageLogLevel``; the broker puts it innermost, next to the
/// handler, so the process span exists and its trace id is the one logged. The trace id is read
/// through the W3C injection of the tracer that made the span, so any tracer's ids show.
struct MessageLogMiddleware: CourierMiddleware {
    let level: Logger.Level

    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        var logger = context.logger
        guard logger.logLevel <= level else { return try await next(context) }
        if let traceID = Self.traceID(of: context.serviceContext, propagator: context.propagator ?? InstrumentationSystem.instrument) { logger[metadataKey: "trace_id"] = "\(traceID)" }
        if context.isBatch { logger[metadataKey: "courier.batch_size"] = "\(context.messages.count)" }
        logger.log(level: level, "received")
        let start = ContinuousClock.now
        do {
            try await next(context)
        } catch {
            logger.log(level: level, "processed", metadata: ["courier.duration": "\(ContinuousClock.now - start)", "error": "\(error)"])
            throw error
        }
        logger.log(level: level, "processed", metadata: ["courier.duration": "\(ContinuousClock.now - start)"])
    }

    /// The trace id the installed instrument would propagate for `context`, if any.
    static func traceID(of context: ServiceContext, propagator: any Instrument) -> Substring? {
        var carrier = MessageHeaders()
        propagator.inject(context, into: &carrier, using: HeadersInjector())
        guard let traceparent = carrier["traceparent"] else { return nil }
        let fields = traceparent.split(separator: "-")
        return fields.count >= 2 ? fields[1] : nil
    }
}
