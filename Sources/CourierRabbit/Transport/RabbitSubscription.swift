@_spi(BrokerModule) import Courier
import Logging
import Synchronization

/// A subscriber's consumer on a channel of its own, resumed on each new connection.
///
/// Deliveries of every connection go to one buffer; each carries the consumer tag of the
/// connection it came on, and only those of the current, open consumer reach the handler: what
/// an old connection left behind is the server's again, and comes back redelivered.
final class RabbitSubscription: TransportSubscription {
    /// The consumer of one connection.
    private struct Consumer: Sendable {
        let channel: AMQPChannel
        let tag: String
        let generation: Int
    }

    private enum State {
        /// A start on `connection` is under way.
        case starting(connection: ObjectIdentifier, generation: Int)
        case consuming(Consumer)
        case stopped
    }

    private let source: RabbitSource
    private let options: SubscriptionOptions
    private let logger: Logger
    private let id = MessageIdentifier.make()
    private let deliveries = HandOffQueue<AMQPDelivery>()
    private let state = Mutex<State?>(nil)
    private let starts = Atomic(0)
    /// The binding's routing key when it has `{name}` captures.
    private let routingPattern: TokenPattern?
    private let onStop: @Sendable (RabbitSubscription) -> Void

    init(source: RabbitSource, options: SubscriptionOptions, logger: Logger, onStop: @escaping @Sendable (RabbitSubscription) -> Void) {
        self.source = source
        let pattern = TokenPattern(source.routingKey ?? "")
        self.routingPattern = source.exchange != nil && pattern.hasCaptures ? pattern : nil
        self.options = options
        self.logger = logger
        self.onStop = onStop
    }

    /// Starts consuming on `live`'s connection: a channel, its prefetch, `basic.consume`. Once
    /// per connection; a start on a connection older than the one consuming does nothing.
    func start(on live: RabbitSession.Live) async throws {
        let connection = ObjectIdentifier(live.connection)
        let claimed = state.withLock { state -> Bool in
            switch state {
            case .stopped:
                return false
            case .starting(let other, let generation):
                if other == connection || generation > live.generation { return false }
            case .consuming(let consumer):
                if consumer.channel.connection === live.connection { return false }
                if consumer.generation > live.generation, consumer.channel.connection.isOpen { return false }
            case nil:
                break
            }
            state = .starting(connection: connection, generation: live.generation)
            return true
        }
        guard claimed else { return }
        do {
            let channel = try await live.connection.openChannel()
            try await channel.call(.basicQos(prefetchSize: 0, prefetchCount: UInt16(clamping: source.prefetch ?? options.prefetch), global: false))
            // A tag of its own per start: deliveries of an earlier start never pass for this one's.
            let start = starts.add(1, ordering: .relaxed).newValue
            let consumer = Consumer(channel: channel, tag: "courier-\(id)-\(start)", generation: live.generation)
            // The consumer is current before its first delivery can arrive.
            let current = state.withLock { state -> Bool in
                guard case .starting(let claimant, _) = state, claimant == connection else { return false }
                state = .consuming(consumer)
                return true
            }
            guard current else {
                try? await channel.close()
                return
            }
            try await channel.consume(queue: source.queue.name, tag: consumer.tag, into: deliveries, outlivesConnection: true)
        } catch {
            // Whoever starts it next (the next recovery) may.
            state.withLock { state in
                if case .starting(let claimant, _) = state, claimant == connection { state = nil }
            }
            throw error
        }
    }

    func next() async throws -> InboundDelivery? {
        while true {
            guard let taken = await deliveries.nextBatch(upTo: options.batch?.maxMessages ?? 1, maxWait: options.batch?.maxWait) else { return nil }
            let consumer = state.withLock { state -> Consumer? in
                if case .consuming(let consumer) = state { consumer } else { nil }
            }
            guard let consumer, consumer.channel.connection.isOpen else {
                logger.debug("RabbitMQ deliveries of a lost connection dropped: the server delivers them again", metadata: ["courier.rabbitmq.count": "\(taken.count)"])
                continue
            }
            let fresh = taken.filter { $0.consumerTag == consumer.tag }
            if fresh.count < taken.count {
                logger.debug("RabbitMQ deliveries of a lost connection dropped: the server delivers them again", metadata: ["courier.rabbitmq.count": "\(taken.count - fresh.count)"])
            }
            guard !fresh.isEmpty else { continue }
            let queue = source.queue.name
            let channel = consumer.channel
            let tags = fresh.map(\.deliveryTag)
            // Settled on the channel the messages came on; if its connection is gone by then,
            // the settlement goes nowhere and the server redelivers them.
            let settlement = Settlement { request in
                for tag in tags {
                    switch request.outcome {
                    case .ack: channel.ack(tag)
                    case .nack: channel.nack(tag, requeue: request.requeue ?? true)
                    case .reject: channel.reject(tag, requeue: request.requeue ?? false)
                    }
                }
            }
            let pattern = routingPattern
            return InboundDelivery(messages: fresh.map { RabbitIncoming.message($0, queue: queue, routingPattern: pattern) }, settlement: settlement)
        }
    }

    /// Cancels the consumer: the server sends no more; what was delivered can still be settled.
    func stop() async {
        let previous = state.withLock { state -> State? in
            defer { state = .stopped }
            return state
        }
        onStop(self)
        if case .consuming(let consumer) = previous {
            _ = try? await consumer.channel.call(.basicCancel(consumerTag: consumer.tag, noWait: false))
        }
        deliveries.finish()
    }
}
