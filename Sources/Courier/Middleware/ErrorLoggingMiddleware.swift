/// Logs a failed delivery once, with the message's metadata, and passes the error on.
struct ErrorLoggingMiddleware: CourierMiddleware {
    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        do {
            try await next(context)
        } catch is CancellationError {
            context.logger.warning("handler cancelled before it finished (shutdown timeout)")
            throw CancellationError()
        } catch {
            context.logger.error(
                "handler failed",
                metadata: ["error.type": "\(type(of: error))", "error": "\(error)"]
            )
            throw error
        }
    }
}
