/// Continues the consume path with the (possibly changed) context.
public typealias ConsumeNext = @Sendable (MessageContext) async throws -> Void
/// Continues the publish path with the (possibly changed) publication; returns the transport's
/// receipts, one per message.
public typealias PublishNext = @Sendable (Publication) async throws -> [PublishReceipt]

/// A middleware wraps both paths a message takes through a broker.
///
/// - `consume`: a delivery on its way to a handler. Call `next` to go on; throw to fail the
///   delivery (the subscriber's ack policy then decides what the broker is told).
/// - `publish`: a publication on its way to the transport, whether it comes from
///   `broker.publish`, a handler's return value, a reply or a request. It returns what `next`
///   returned: the transport's receipts, one per message.
///
/// Middlewares run in the order they were given to the broker: the first one sees a delivery
/// first and a publication first. Both methods have pass-through defaults, so a middleware
/// implements only the path it cares about.
public protocol CourierMiddleware: Sendable {
    func consume(_ context: MessageContext, next: ConsumeNext) async throws
    func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt]
}

extension CourierMiddleware {
    public func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        try await next(context)
    }

    public func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt] {
        try await next(publication)
    }
}

extension Array where Element == any CourierMiddleware {
    // Built with a loop, not `reduce`: closures passed through a generic function come back
    // wrapped in reabstraction thunks, each an extra async frame on every message.

    /// The consume path through every middleware, in order, ending in `terminal`.
    func consumeChain(ending terminal: @escaping ConsumeNext) -> ConsumeNext {
        var chain = terminal
        for middleware in reversed() {
            let next = chain
            chain = { context in try await middleware.consume(context, next: next) }
        }
        return chain
    }

    /// The publish path through every middleware, in order, ending in `terminal`.
    func publishChain(ending terminal: @escaping PublishNext) -> PublishNext {
        var chain = terminal
        for middleware in reversed() {
            let next = chain
            chain = { publication in try await middleware.publish(publication, next: next) }
        }
        return chain
    }
}
