import Tracing

/// Maps a handler's errors to what the broker is told and what a requester gets, by error type,
/// like FastStream's `ExceptionMiddleware`.
///
/// The first rule whose type matches the error decides; an error no rule matches goes on to the
/// ack policy as before. A matched error is recorded on the process span (with error status when
/// the message is nacked or rejected) and logged at warning level.
///
/// ```swift
/// let errors = ErrorMiddleware()
///     .on(ValidationError.self, .reject())                       // never redeliver bad input
///     .on(RateLimited.self) { error, _ in .nack(delay: error.retryAfter) }
///     .on(NotFound.self, .reply(ErrorBody(code: 404)))           // answer the requester, ack
/// let broker = MemoryBroker(middlewares: [TelemetryMiddleware(), errors])
/// ```
///
/// Put it after `TelemetryMiddleware` so the process span sees the error.
public struct ErrorMiddleware: CourierMiddleware {
    /// What becomes of a message whose handler failed with a matched error.
    public enum Resolution: Sendable {
        /// Acknowledge: the broker forgets the message.
        case ack
        /// Deliver it again (after `delay`, where the broker can delay).
        case nack(requeue: Bool? = nil, delay: Duration? = nil)
        /// Drop or dead-letter it.
        case reject(requeue: Bool? = nil)
        /// Answer the request's `replyTo` with `body` (when it has one), then acknowledge.
        case reply(any MessageEncodable)
        /// Let the error go on to the subscriber's ack policy.
        case rethrow
    }

    private struct Rule: Sendable {
        var resolve: @Sendable (any Error, MessageContext) async throws -> Resolution?
    }

    private var rules: [Rule] = []

    public init() {}

    /// Adds a rule: errors of type `type` resolve to `resolution`.
    public func on<Failure: Error>(_ type: Failure.Type, _ resolution: Resolution) -> Self {
        on(type) { _, _ in resolution }
    }

    /// Adds a rule: errors of type `type` resolve to what `resolve` returns for them.
    public func on<Failure: Error>(
        _ type: Failure.Type,
        _ resolve: @escaping @Sendable (Failure, MessageContext) async throws -> Resolution
    ) -> Self {
        var copy = self
        copy.rules.append(Rule { error, context in
            guard let error = error as? Failure else { return nil }
            return try await resolve(error, context)
        })
        return copy
    }

    public func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        do {
            try await next(context)
        } catch {
            guard !(error is CancellationError), let resolution = try await resolution(for: error, context) else { throw error }
            let request: Settlement.Request
            switch resolution {
            case .rethrow:
                throw error
            case .ack:
                request = Settlement.Request(.ack)
            case .nack(let requeue, let delay):
                request = Settlement.Request(.nack, requeue: requeue, delay: delay)
            case .reject(let requeue):
                request = Settlement.Request(.reject, requeue: requeue)
            case .reply(let body):
                let encoded = try context.json.withCurrent { try body.encodeMessageBody() }
                try await context.publishResult(HandlerResult(body: encoded), to: [], reply: true)
                request = Settlement.Request(.ack)
            }
            context.span?.recordError(error)
            if request.outcome != .ack { context.span?.setStatus(SpanStatus(code: .error)) }
            context.logger.warning(
                "handler failed; settled by the error middleware",
                metadata: ["error.type": "\(type(of: error))", "error": "\(error)", "courier.settlement": "\(request.outcome.rawValue)"]
            )
            try await context.settlement.settle(request)
        }
    }

    private func resolution(for error: any Error, _ context: MessageContext) async throws -> Resolution? {
        for rule in rules {
            if let resolution = try await rule.resolve(error, context) { return resolution }
        }
        return nil
    }
}
