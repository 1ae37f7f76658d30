/// A running subscription, as its transport exposes it.
public protocol TransportSubscription: Sendable {
    /// The next delivery, waiting for one; nil once the subscription has stopped.
    ///
    /// The subscriber calls this only when it can take another delivery, so a transport that
    /// fetches on demand, or buffers boundedly, passes backpressure on to the broker.
    func next() async throws -> InboundDelivery?

    /// Stops intake: pending and later calls to ``next()`` return nil. Messages already delivered
    /// can still be settled.
    func stop() async
}
