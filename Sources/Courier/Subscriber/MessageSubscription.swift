import Synchronization

/// A subscription made while the broker runs, read by the application instead of a handler:
/// FastStream's dynamic subscriber with `get_one()` and `async for`.
///
/// ```swift
/// let replies = try await broker.subscription(to: "audit.replies")
/// if let first = try await replies.next(timeout: .seconds(2)) { print(try first.message.decode(as: String.self)) }
/// for try await context in replies { … }   // until replies.stop() or the broker stops
/// ```
///
/// Each message passes the broker's middlewares as a delivery does (telemetry makes its process
/// span, which ends when the message is handed out; publish from ``MessageContext/publish(_:to:headers:correlationID:)``
/// to continue its trace). With `manualAck` false (the default) a message is acknowledged as it is
/// handed out; with true, settle it with the context's `ack()`, `nack()` or `reject()`.
public struct MessageSubscription: AsyncSequence, Sendable {
    public typealias Element = MessageContext

    let subscription: any TransportSubscription
    let receive: @Sendable (InboundDelivery) async throws -> MessageContext

    /// The next message, waiting for one; nil once the subscription stopped.
    public func next() async throws -> MessageContext? {
        guard let delivery = try await subscription.next() else { return nil }
        return try await receive(delivery)
    }

    /// The next message, waiting at most `timeout`; nil when none came in time or the
    /// subscription stopped. A message that arrives as the time runs out is returned, never lost.
    public func next(timeout: Duration) async throws -> MessageContext? {
        enum Arrival: Sendable {
            case delivery(InboundDelivery?)
            case timedOut
        }
        let subscription = self.subscription
        let delivery = try await withThrowingTaskGroup(of: Arrival.self) { group -> InboundDelivery? in
            group.addTask { .delivery(try await subscription.next()) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timedOut
            }
            guard case .delivery(let delivery) = try await group.next()! else {
                group.cancelAll()
                // The read may have taken a delivery just as it was cancelled: keep it.
                while let arrival = try await group.next() {
                    if case .delivery(let delivery?) = arrival { return delivery }
                }
                return nil
            }
            group.cancelAll()
            return delivery
        }
        guard let delivery else { return nil }
        return try await receive(delivery)
    }

    /// Stops the subscription: ``next()`` returns nil from now on.
    public func stop() async {
        await subscription.stop()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: MessageSubscription

        public mutating func next() async throws -> MessageContext? {
            try await subscription.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(subscription: self)
    }
}

extension Broker {
    /// Subscribes to `destination` now, while the broker runs; see ``MessageSubscription``.
    /// - Throws: ``CourierError`` `.subscriptionEnded` if the broker is not running.
    public func subscription(
        to destination: String,
        manualAck: Bool = false,
        json: JSONCoding? = nil
    ) async throws -> MessageSubscription {
        try await subscription(to: Transport.Source(destination: destination), manualAck: manualAck, json: json)
    }

    /// Subscribes to a broker-specific source now, while the broker runs; see ``MessageSubscription``.
    public func subscription(
        to source: Transport.Source,
        manualAck: Bool = false,
        json: JSONCoding? = nil
    ) async throws -> MessageSubscription {
        guard await waitUntilRunning() else {
            throw CourierError(.subscriptionEnded, "the broker is not running: run it before subscribing while it runs")
        }
        let policy: AckPolicy = manualAck ? .manual : .ackFirst
        let subscription = try await transport.subscribe(to: source, options: SubscriptionOptions(ackPolicy: policy))
        guard adopt(subscription) else {
            await subscription.stop()
            throw CourierError(.subscriptionEnded, "the broker stopped while subscribing")
        }
        let destination = source.subscribedDestination
        let json = json ?? options.json
        let broker = transport.description
        let (logger, dispatch, middlewares) = (self.logger, self.dispatch, self.middlewares)
        return MessageSubscription(subscription: subscription) { delivery in
            var delivery = delivery
            if !json.isDefault {
                for index in delivery.messages.indices { delivery.messages[index].json = json }
            }
            let handedOut = HandedOut()
            let chain = ([AcknowledgementMiddleware(policy: policy)] + middlewares).consumeChain { context in
                handedOut.context = context
            }
            let context = MessageContext(
                delivery: delivery,
                isBatch: false,
                destination: destination,
                broker: broker,
                logger: logger,
                json: json,
                dispatch: dispatch
            )
            try await chain(context)
            return handedOut.context ?? context
        }
    }
}

/// The context the middlewares hand to the end of the chain, taken out for the application.
private final class HandedOut: Sendable {
    private let stored = Mutex<MessageContext?>(nil)

    var context: MessageContext? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}
