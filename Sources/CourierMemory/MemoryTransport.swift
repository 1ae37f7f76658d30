public import Courier
public import Logging
import NIOCore
import Synchronization

/// The embedded broker: `Broker<MemoryTransport>`.
public typealias MemoryBroker = Broker<MemoryTransport>
/// Subscribers declared apart from a broker and included into brokers of this kind (FastStream's `MemoryRouter`).
public typealias MemoryRouter = BrokerRouter<MemoryTransport>

extension Broker where Transport == MemoryTransport {
    /// Creates an in-memory broker.
    ///
    /// - Parameters:
    ///   - capacity: how many messages each destination's queue holds before publishers wait.
    public convenience init(
        capacity: Int = 1024,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.memory"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.init(transport: MemoryTransport(capacity: capacity), middlewares: middlewares, logger: logger, options: options)
    }
}

/// A destination on the in-memory broker: an exact name, no wildcards.
public struct MemoryDestination: SubscriptionSource, Hashable {
    public var name: String

    public init(destination: String) {
        self.name = destination
    }

    public var subscribedDestination: SubscribedDestination {
        SubscribedDestination(name: name, isTemporary: name.hasPrefix(MemoryTransport.replyPrefix))
    }
}

/// An in-process broker: one bounded queue per destination, competing consumers, delivery on the
/// subscriber's own tasks (never inline in the publisher, so no trace context leaks across).
///
/// Acknowledgements: ack forgets a message, nack puts it back at the front of its queue (it is
/// delivered again, with ``IncomingMessage/deliveryCount`` raised), reject drops it.
public final class MemoryTransport: BrokerTransport {
    public typealias Source = MemoryDestination

    static let replyPrefix = "courier.reply."

    /// Messages each queue holds before publishers wait.
    public let capacity: Int
    private let queues = Mutex<[String: MemoryQueue]>([:])
    private let consumerIDs = Atomic<Int>(0)
    /// 0 idle, 1 connected, 2 closed: the whole connection state of a broker without a server.
    private let lifecycle = Atomic<Int>(0)

    public init(capacity: Int = 1024) {
        precondition(capacity > 0, "a queue holds at least one message")
        self.capacity = capacity
    }

    public var description: BrokerDescription { BrokerDescription(messagingSystem: "memory") }

    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {
        lifecycle.store(1, ordering: .relaxed)
    }

    public func close() async {
        lifecycle.store(2, ordering: .relaxed)
    }

    /// Always answers: the broker is this process.
    public func ping() async throws {}

    /// Idle before ``connect()``, connected until ``close()``, then closed.
    public var connectionState: ConnectionState {
        switch lifecycle.load(ordering: .relaxed) {
        case 0: .idle
        case 1: .connected
        default: .closed()
        }
    }

    /// The counters of `destination`'s queue.
    public func statistics(for destination: String) -> MemoryQueueStatistics {
        queues.withLock { $0[destination]?.statistics } ?? MemoryQueueStatistics()
    }

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let queue = queue(named: publication.destinationName)
        for message in publication.messages {
            try await queue.enqueue(
                IncomingMessage(
                    body: message.body,
                    headers: message.headers,
                    destination: publication.destinationName,
                    correlationID: message.correlationID,
                    messageID: message.messageID,
                    replyTo: message.replyTo,
                    contentType: message.contentType
                )
            )
        }
        return publication.plainReceipts
    }

    public func subscribe(to source: MemoryDestination, options: SubscriptionOptions) async throws -> any TransportSubscription {
        MemorySubscription(
            queue: queue(named: source.name),
            consumer: consumerIDs.wrappingAdd(1, ordering: .relaxed).newValue,
            maxMessages: options.batch?.maxMessages ?? 1,
            onStop: nil
        )
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        let name = Self.replyPrefix + MessageIdentifier.make()
        let subscription = MemorySubscription(
            queue: queue(named: name),
            consumer: consumerIDs.wrappingAdd(1, ordering: .relaxed).newValue,
            maxMessages: 1,
            onStop: { [weak self] in self?.removeQueue(named: name) }
        )
        return ReplyInbox(destination: name, subscription: subscription)
    }

    private func queue(named name: String) -> MemoryQueue {
        queues.withLock { queues in
            if let queue = queues[name] { return queue }
            let queue = MemoryQueue(name: name, capacity: capacity)
            queues[name] = queue
            return queue
        }
    }

    private func removeQueue(named name: String) {
        _ = queues.withLock { $0.removeValue(forKey: name) }
    }
}

/// One consumer of a memory queue.
struct MemorySubscription: TransportSubscription {
    let queue: MemoryQueue
    let consumer: Int
    let maxMessages: Int
    let onStop: (@Sendable () -> Void)?

    func next() async throws -> InboundDelivery? {
        guard let messages = await queue.dequeue(consumer: consumer, maxMessages: maxMessages) else { return nil }
        let queue = self.queue
        let settlement = Settlement { request in
            queue.recordSettlement(request, count: messages.count)
            if request.redelivers {
                for var message in messages.reversed() {
                    message.deliveryCount += 1
                    queue.requeue(message)
                }
            }
        }
        return InboundDelivery(messages: messages, settlement: settlement)
    }

    func stop() async {
        queue.stop(consumer: consumer)
        onStop?()
    }
}
