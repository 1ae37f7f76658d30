/// Logs a failed delivery once, with the message's metadata, and passes the error on.
///
/// A subscriber has it twice: innermost, next to the handler, so the line is written while the
/// process span is current (a logging metadata provider such as swift-otel's adds `trace_id` and
/// `span_id`); and outermost, for a failure that a middleware raised before the handler ran.
struct ErrorLoggingMiddleware: CourierMiddleware {
    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        do {
            try await next(context)
        } catch {
            guard !context.settlement.markFailureLogged() else { throw error }
            if error is CancellationError {
                context.logger.warning("handler cancelled before it finished (shutdown timeout)")
            } else {
                context.logger.error("handler failed", metadata: ["error.type": "\(type(of: error))", "error": "\(error)"])
            }
            throw error
        }
    }
}
