public import Courier
public import Logging
import Foundation
import NIOCore
import Synchronization

/// The Kafka broker: `Broker<KafkaTransport>`.
public typealias KafkaBroker = Broker<KafkaTransport>
/// Subscribers declared apart from a broker and included into brokers of this kind (FastStream's `KafkaRouter`).
public typealias KafkaRouter = BrokerRouter<KafkaTransport>

extension Broker where Transport == KafkaTransport {
    /// Creates a Kafka broker for `kafka://host:port[,host:port]`.
    public convenience init(
        url: String = "kafka://127.0.0.1:9092",
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.kafka"),
        options: BrokerOptions = BrokerOptions()
    ) throws {
        try self.init(configuration: KafkaConfiguration(url: url), middlewares: middlewares, logger: logger, options: options)
    }

    /// Creates a Kafka broker.
    public convenience init(
        configuration: KafkaConfiguration,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.kafka"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.init(transport: KafkaTransport(configuration: configuration, logger: logger), middlewares: middlewares, logger: logger, options: options)
    }
}

/// Moves records through Kafka topics on librdkafka.
///
/// One producer per broker, created by ``connect()`` (or the first publish): a publish returns
/// once the broker acknowledged the record (`acks=all`), with its partition and offset in the
/// receipt. Each subscriber has a consumer of its own. The default ack policy is FastStream's,
/// `.ackFirst`: the offset is stored before the handler runs.
///
/// The poll loops of the producer and of every consumer run in ``run()``'s task group, for as
/// long as the broker runs, and end with ``close()`` (a program that publishes without running
/// the broker gets them driven by a task of the transport's own, joined by ``close()``).
public final class KafkaTransport: BrokerTransport {
    public typealias Source = KafkaSource
    public typealias PublishOptions = KafkaPublishOptions

    public let configuration: KafkaConfiguration
    public let description: BrokerDescription
    private let logger: Logger

    struct State {
        var producer: KafkaProducer?
        var subscriptions: [KafkaSubscription] = []
        /// The reply topic and its consumer, made by the first request (and again by the next one
        /// if that failed), shared by every request.
        var replies: SharedConnection<KafkaReplies>?
        var closed = false
        /// Why the last ping failed; nil once one succeeded (`KafkaTransport+Health.swift`).
        var lastPingFailure: String?
    }

    let state = Mutex(State())
    /// The poll loops of the producer and the consumers.
    let loops = KafkaPollLoops()

    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "courier.kafka")) {
        self.configuration = configuration
        self.logger = logger
        let address = configuration.primaryAddress
        self.description = BrokerDescription(messagingSystem: "kafka", serverAddress: address?.host, serverPort: address?.port)
    }

    public var defaultAckPolicy: AckPolicy { .ackFirst }

    /// Drives the poll loops of the producer and of every consumer, those made later included;
    /// returns once ``close()`` stopped them all.
    public func run() async throws {
        await loops.run()
    }

    /// Checks the producer's and the consumers' properties and creates the producer: an invalid
    /// property fails here, with librdkafka's own text.
    public func connect() async throws {
        _ = try producer()
        try KafkaHandle.validate(configuration.consumerConfiguration(group: "courier-check"), secrets: configuration.secrets)
    }

    func producer() throws -> KafkaProducer {
        try state.withLock { state in
            if state.closed { throw KafkaError(.closed, "the broker is closed") }
            if let producer = state.producer { return producer }
            let producer = try KafkaProducer(configuration: configuration, loops: loops, logger: logger)
            state.producer = producer
            return producer
        }
    }

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        _ = try destination(of: publication)
        let producer = try producer()
        let topic = publication.destinationName
        let records = publication.messages.map { message in
            let options = options(of: message)
            return KafkaOutgoingRecord(
                topic: topic,
                partition: options?.partition,
                key: options?.key,
                value: message.hasNullBody ? nil : message.body,
                timestampMilliseconds: options?.timestamp.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) },
                headers: KafkaIncoming.headers(of: message, inBatch: publication.isBatch),
                confirmed: options?.waitsForConfirmation ?? true
            )
        }
        let positions = try await producer.send(records)
        return zip(publication.messages, positions).map { message, position in
            PublishReceipt(messageID: position?.messageID ?? message.messageID, details: position)
        }
    }

    public func subscribe(to source: KafkaSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        let subscription = try KafkaSubscription(source: source, options: options, configuration: configuration, logger: logger)
        try state.withLock { state in
            if state.closed { throw KafkaError(.closed, "the broker is closed") }
            state.subscriptions.append(subscription)
        }
        try await subscription.start(
            source,
            metadataTimeout: configuration.deliveryTimeout,
            newTopicPartitions: configuration.newTopicPartitions,
            loops: loops
        )
        return subscription
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        let producer = try producer()
        let replies = try state.withLock { state in
            if state.closed { throw KafkaError(.closed, "the broker is closed") }
            if let replies = state.replies { return replies }
            let configuration = self.configuration
            let logger = self.logger
            let loops = self.loops
            // A failed start (a broker down) is tried again by the next request.
            let replies = SharedConnection<KafkaReplies>(
                isOpen: { _ in true },
                lost: { _ in nil },
                connect: { _, _ in try await KafkaReplies(configuration: configuration, producer: producer, loops: loops, logger: logger) },
                discard: { await $0.close() },
                closedError: { KafkaError(.closed, "the broker is closed") }
            )
            state.replies = replies
            return replies
        }
        guard let started = try await replies.connection() else { throw CancellationError() }
        return started.inbox(for: correlationID)
    }

    /// The running subscriptions (for tests and diagnostics).
    var subscriptions: [KafkaSubscription] { state.withLock { $0.subscriptions } }

    // MARK: - Topics

    /// Creates `topic` with `partitions` partitions (replication factor 1); an existing topic is
    /// left as it is.
    public func createTopic(_ topic: String, partitions: Int32 = 1) async throws {
        let handle = try producer().kafkaHandle
        let timeout = Int32(clamping: configuration.deliveryTimeout.wholeMilliseconds)
        if let error = await handle.call({
            KafkaAdmin.createTopic(topic, partitions: partitions, handle: handle, timeoutMilliseconds: timeout)
        }) {
            throw error
        }
    }

    /// How many partitions `topic` has.
    public func partitionCount(of topic: String) async throws -> Int {
        let handle = try producer().kafkaHandle
        let timeout = Int32(clamping: configuration.deliveryTimeout.wholeMilliseconds)
        return Int(try await handle.call {
            KafkaAdmin.partitionCount(of: topic, handle: handle, timeoutMilliseconds: timeout)
        }.get())
    }

    /// Graceful shutdown, after every subscriber stopped: each consumer commits what was
    /// processed and leaves its group, then the producer sends what it holds.
    public func close() async {
        let (producer, subscriptions, replies) = state.withLock { state in
            state.closed = true
            defer { state.subscriptions = [] }
            return (state.producer, state.subscriptions, state.replies)
        }
        await withTaskGroup(of: Void.self) { group in
            for subscription in subscriptions { group.addTask { await subscription.consumer.close() } }
        }
        // Before the producer: deleting the reply topic goes through it.
        await replies?.close(permanently: true)
        await producer?.close()
        // Every loop has stopped: their group ends.
        await loops.close()
    }
}
