/// Logs a failed delivery once, with the message's metadata, and passes the error on.
///
/// A subscriber with middlewares has it innermost, next to the handler, so the line is written
/// while the process span is current (a logging metadata provider such as swift-otel's adds
/// `trace_id` and `span_id`); ``AcknowledgementMiddleware``, outermost, logs a failure that a
/// middleware raised before the handler ran (and, without middlewares, the handler's).
struct ErrorLoggingMiddleware: CourierMiddleware {
    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        do {
            try await next(context)
        } catch {
            Self.log(error, of: context)
            throw error
        }
    }

    /// Logs `error` unless a line was written for this delivery already.
    static func log(_ error: any Error, of context: MessageContext) {
        guard !context.settlement.markFailureLogged() else { return }
        if error is CancellationError {
            context.logger.warning("handler cancelled before it finished (shutdown timeout)")
        } else {
            context.logger.error("handler failed", metadata: ["error.type": "\(type(of: error))", "error": "\(error)"])
        }
    }
}
