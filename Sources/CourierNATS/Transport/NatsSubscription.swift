import Courier
import Logging
import Synchronization

/// A subscription the server pushes to: a core subject, a JetStream push consumer, a key-value
/// watch or a reply inbox. nats.c's thread fills a bounded ``NatsInbound``; ``next()`` takes
/// from it when the subscriber can handle another delivery.
final class NatsSubscription: TransportSubscription {
    private let inbound: NatsInbound
    private let incoming: NatsIncoming
    private let batch: BatchOptions?
    private let handle = Mutex<NatsSubscriptionHandle?>(nil)
    /// A reply inbox turns a no-responders status into an error for the waiting request.
    private let isReplyInbox: Bool
    /// Runs once the subscription stopped (removing an ephemeral consumer, say).
    private let cleanup: (@Sendable () async -> Void)?

    init(
        inbound: NatsInbound,
        incoming: NatsIncoming,
        batch: BatchOptions?,
        isReplyInbox: Bool = false,
        cleanup: (@Sendable () async -> Void)? = nil
    ) {
        self.inbound = inbound
        self.incoming = incoming
        self.batch = batch
        self.isReplyInbox = isReplyInbox
        self.cleanup = cleanup
    }

    func attach(_ subscription: NatsSubscriptionHandle) {
        handle.withLock { $0 = subscription }
    }

    func next() async throws -> InboundDelivery? {
        while true {
            guard let raw = await inbound.next() else { return nil }
            if let status = raw.status, raw.body.readableBytes == 0 {
                if isReplyInbox, status == 503 {
                    throw NatsError(.noResponders, "no responders: nothing listens on the requested subject")
                }
                continue  // heartbeats and other control messages carry nothing to handle
            }
            guard let batch, batch.maxMessages > 1 else {
                // A single message: no arrays of deliveries to combine.
                let (message, settlement) = incoming.delivery(raw)
                return InboundDelivery(messages: [message], settlement: settlement)
            }
            var deliveries = [incoming.delivery(raw)]
            for more in inbound.takeQueued(upTo: batch.maxMessages - 1) where more.status == nil {
                deliveries.append(incoming.delivery(more))
            }
            return InboundDelivery.combining(deliveries)
        }
    }

    /// Drains: the server stops sending, what nats.c and the queue already hold is still handed
    /// out, then ``next()`` returns nil.
    func stop() async {
        let subscription = handle.withLock { $0 }
        if isReplyInbox || subscription == nil {
            subscription?.unsubscribe()
            inbound.finish()
        } else if subscription?.drain() == false {
            inbound.finish()
        }
        await cleanup?()
    }
}

extension InboundDelivery {
    /// One delivery of several messages, settled together.
    static func combining(_ deliveries: [(IncomingMessage, Settlement)]) -> InboundDelivery {
        if deliveries.count == 1 { return InboundDelivery(messages: [deliveries[0].0], settlement: deliveries[0].1) }
        let settlements = deliveries.map(\.1)
        return InboundDelivery(
            messages: deliveries.map(\.0),
            settlement: Settlement { request in
                for settlement in settlements { try await settlement.settle(request) }
            }
        )
    }
}
