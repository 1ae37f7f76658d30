public import Courier
public import CoreMetrics
public import Logging
import NIOCore
import Synchronization

/// The NATS broker: `Broker<NatsTransport>`.
public typealias NatsBroker = Broker<NatsTransport>
/// Subscribers declared apart from a broker and included into brokers of this kind (FastStream's `NatsRouter`).
public typealias NatsRouter = BrokerRouter<NatsTransport>

extension Broker where Transport == NatsTransport {
    /// Creates a NATS broker for `nats://[user:password@]host[:port]` (several URLs separated by commas).
    public convenience init(
        url: String = "nats://127.0.0.1:4222",
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.nats"),
        options: BrokerOptions = BrokerOptions()
    ) throws {
        try self.init(configuration: NatsConfiguration(url: url), middlewares: middlewares, logger: logger, options: options)
    }

    /// Creates a NATS broker; its slow-consumer counters go to `metricsFactory` (default: the
    /// bootstrapped swift-metrics backend).
    public convenience init(
        configuration: NatsConfiguration,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.nats"),
        options: BrokerOptions = BrokerOptions(),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.init(
            transport: NatsTransport(configuration: configuration, logger: logger, metricsFactory: metricsFactory),
            middlewares: middlewares,
            logger: logger,
            options: options
        )
    }
}

/// Moves messages through core NATS subjects, JetStream streams and key-value buckets, on nats.c.
///
/// Core NATS delivers at most once: there is nothing to ack. JetStream consumers are at least
/// once: ack is `+ACK`, nack is `-NAK` (with the consumer's `nackDelay`), reject is `+TERM`.
public final class NatsTransport: BrokerTransport {
    public typealias Source = NatsSource
    public typealias Destination = NatsDestination
    public typealias PublishOptions = NatsPublishOptions


    public let configuration: NatsConfiguration
    let client: NatsClient
    let jetStream: NatsJetStream
    let keyValueStores: NatsKeyValueStores
    private let logger: Logger

    public init(
        configuration: NatsConfiguration,
        logger: Logger = Logger(label: "courier.nats"),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.client = NatsClient(configuration: configuration, logger: logger, metricsFactory: metricsFactory)
        self.jetStream = NatsJetStream(client: client)
        self.keyValueStores = NatsKeyValueStores(client: client)
        let address = configuration.primaryAddress
        self.description = BrokerDescription(messagingSystem: "nats", serverAddress: address?.host, serverPort: address?.port)
    }

    /// Made once: every publish asks for it, and the address comes from parsing the server URL.
    public let description: BrokerDescription

    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {
        try await client.connect()
    }

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let destination = try destination(of: publication)
        // The whole publish, a wait for the connection during a reconnect included, is bounded
        // by the publish timeout.
        let publishTimeout = configuration.publishTimeout
        let deadline = ContinuousClock.now + publishTimeout
        // A publish-only broker that never ran connects on its first publish.
        let connection = try await client.connectedConnection()
        let subject = destination.subject
        guard case .jetStream(let expectedStream) = destination.kind else {
            // While nats.c reconnects the message waits here, not in nats.c's reconnect buffer:
            // one whose publish failed is then never sent later behind the caller's back.
            try await client.waitUntilConnected(deadline: deadline, timeout: publishTimeout, publishingTo: subject)
            for message in publication.messages {
                try client.publish(on: connection, subject: subject, message)
            }
            return publication.plainReceipts
        }
        let messages = publication.messages.map { message in
            var headers = NatsIncoming.headers(of: message, replyToHeader: true)
            if let expectedStream { headers["Nats-Expected-Stream"] = expectedStream }
            // Always a message id: a publish sent again (a stream electing its leader) is then
            // stored once, within the stream's duplicate window.
            headers["Nats-Msg-Id"] = options(of: message)?.deduplicationID ?? message.messageID
            return (message.messageID, headers, message.body)
        }
        let acks = try await jetStream.publish(subject: subject, messages.map { ($0.1, $0.2) }, deadline: deadline)
        return zip(messages, acks).map { PublishReceipt(messageID: $0.0, details: $1) }
    }

    public func subscribe(to source: NatsSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        let batch = options.batch
        let incoming = NatsIncoming(source: source, client: client, logger: logger)
        switch source.kind {
        case .subject(let queue):
            let inbound = NatsInbound(limits: configuration.pendingLimits)
            let subscription = NatsSubscription(inbound: inbound, incoming: incoming, batch: batch)
            subscription.attach(try client.subscribe(subject: source.natsSubject, queue: queue, inbound: inbound, label: source.subject))
            try await client.flush()
            return subscription
        case .jetStream(let stream, let declaration, let consumer):
            if let declaration { try await jetStream.declare(declaration) }
            return try await subscribeJetStream(source, stream: stream, consumer: consumer, incoming: incoming, batch: batch)
        case .keyValue(let bucket):
            try await declareKeyValue(bucket: bucket)
            let inbox = Self.newInbox()
            let config = ConsumerConfig(
                deliverSubject: inbox,
                deliverPolicy: "last_per_subject",
                ackPolicy: "none",
                filterSubject: "$KV.\(bucket).\(source.subject)",
                memoryStorage: true,
                inactiveThreshold: Duration.seconds(60).wholeNanoseconds
            )
            let inbound = NatsInbound(limits: configuration.pendingLimits)
            let stream = "KV_\(bucket)"
            let jetStream = self.jetStream
            let consumer = ConsumerNameBox()
            let subscription = NatsSubscription(inbound: inbound, incoming: incoming, batch: batch) {
                if let name = consumer.name { try? await jetStream.deleteConsumer(stream: stream, consumer: name) }
            }
            subscription.attach(try client.subscribe(subject: inbox, queue: nil, inbound: inbound, label: "$KV.\(bucket).\(source.subject)"))
            try await client.flush()
            consumer.name = try await jetStream.createConsumer(stream: stream, config: config)
            return subscription
        }
    }

    private func subscribeJetStream(
        _ source: NatsSource,
        stream: String,
        consumer: NatsConsumer,
        incoming: NatsIncoming,
        batch: BatchOptions?
    ) async throws -> any TransportSubscription {
        // The server never has more unacked messages out than the hand-off can hold.
        let maxAckPending = min(consumer.maxAckPending ?? 1000, configuration.pendingLimits.messages)
        var config = ConsumerConfig(
            durableName: consumer.durableName,
            deliverPolicy: consumer.deliverPolicy.rawValue,
            ackPolicy: "explicit",
            ackWait: consumer.ackWait?.wholeNanoseconds,
            maxDeliver: consumer.maxDeliver,
            maxAckPending: maxAckPending,
            filterSubject: source.natsSubject
        )
        switch consumer.delivery {
        case .pull(let batchSize, let expires):
            let name = try await jetStream.createConsumer(stream: stream, config: config)
            let subscription = NatsPullSubscription(
                client: client,
                stream: stream,
                consumer: name,
                batchSize: batchSize,
                expires: expires,
                incoming: incoming,
                batch: batch,
                logger: logger
            )
            try subscription.start()
            try await client.flush()
            return subscription
        case .push(let queue):
            // A durable push consumer keeps its deliver subject, so every subscriber of it
            // (and of its queue group) listens on the same one.
            let deliverSubject = consumer.durableName.map { "_DELIVER.\(stream).\($0)" } ?? Self.newInbox()
            config.deliverSubject = deliverSubject
            config.deliverGroup = queue
            let inbound = NatsInbound(limits: configuration.pendingLimits)
            let subscription = NatsSubscription(inbound: inbound, incoming: incoming, batch: batch)
            subscription.attach(try client.subscribe(subject: deliverSubject, queue: queue, inbound: inbound, label: source.subject))
            try await client.flush()
            _ = try await jetStream.createConsumer(stream: stream, config: config)
            return subscription
        }
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        try await client.connect()
        let inbox = Self.newInbox()
        let inbound = NatsInbound(limits: NatsConfiguration.PendingLimits(messages: 16, bytes: configuration.pendingLimits.bytes))
        let incoming = NatsIncoming(source: .subject(inbox), client: client, logger: logger)
        let subscription = NatsSubscription(inbound: inbound, incoming: incoming, batch: nil, isReplyInbox: true)
        // The request goes out on the same connection after this SUB, so the server has the
        // subscription before the reply can come: no flush needed.
        subscription.attach(try client.subscribe(subject: inbox, queue: nil, inbound: inbound))
        return ReplyInbox(destination: inbox, subscription: subscription)
    }

    public func close() async {
        jetStream.close()
        keyValueStores.close()
        await client.drainAndClose()
    }

    static func newInbox() -> String {
        "_INBOX." + MessageIdentifier.make().replacingOccurrences(of: "-", with: "")
    }

    // MARK: - JetStream management

    /// Creates the stream, or updates it to this configuration.
    public func declareStream(_ stream: NatsStream) async throws {
        try await client.connect()
        try await jetStream.declare(stream)
    }

    /// What the stream holds now.
    public func streamState(_ name: String) async throws -> NatsStreamState {
        try await client.connect()
        return try await jetStream.streamState(name)
    }

    /// The name (`server_name`) of the server that leads the stream in a cluster; nil on a
    /// single server, or while the cluster elects one.
    public func streamLeader(_ name: String) async throws -> String? {
        try await client.connect()
        return try await jetStream.streamLeader(name)
    }

    /// Deletes the stream and everything in it.
    public func deleteStream(_ name: String) async throws {
        try await client.connect()
        try await jetStream.deleteStream(name)
    }

    /// A consumer's progress (unacked, redelivered, pending).
    public func consumerState(stream: String, consumer: String) async throws -> NatsConsumerState {
        try await client.connect()
        return try await jetStream.consumerState(stream: stream, consumer: consumer)
    }

    // MARK: - Key-value

    /// Creates a key-value bucket if it does not exist yet.
    public func declareKeyValue(bucket: String, history: Int = 1) async throws {
        try await client.connect()
        var config = StreamConfig(NatsStream("KV_\(bucket)", subjects: ["$KV.\(bucket).>"]))
        config.maxMsgsPerSubject = Int64(history)
        config.allowRollupHeaders = true
        config.denyDelete = true
        config.discard = "new"
        do {
            _ = try await jetStream.call("$JS.API.STREAM.CREATE.KV_\(bucket)", config, as: StreamInfo.self)
        } catch let error as NatsError where error.jetStreamErrorCode == 10058 {
            // It exists already, perhaps made by another client with other options: use it as it is.
        }
    }

    /// Stores `value` under `key`; returns the entry's revision.
    ///
    /// A JetStream publish to the key's subject, as nats.c's `kvStore_Put` makes it, but on
    /// Courier's shared reply inbox: no thread waits for the PubAck.
    @discardableResult
    public func putValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        try await client.connect()
        return try await jetStream.publish(subject: "$KV.\(bucket).\(key)", headers: [:], body: value).sequence
    }

    /// Deletes `key` (a delete marker watchers see as ``NatsKeyValueEntry/Operation/delete``);
    /// returns the marker's revision. Earlier revisions stay in the bucket's history.
    @discardableResult
    public func deleteValue(forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        try await client.connect()
        return try await jetStream.publish(subject: "$KV.\(bucket).\(key)", headers: ["KV-Operation": "DEL"], body: ByteBuffer()).sequence
    }

    /// The current value of `key`, with its revision; nil when the key has no value (never
    /// set, deleted or purged). Throws ``NatsError`` when the bucket does not exist or the
    /// server does not answer.
    public func value(forKey key: String, inBucket bucket: String) async throws -> NatsKeyValueRecord? {
        try await keyValueStores.handle(for: bucket).get(key)
    }

    /// Stores `value` under `key` only if the key has no value yet (or was deleted); returns the
    /// revision. Throws ``NatsError/Code/keyValueConflict`` when the key has a value.
    @discardableResult
    public func createValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        try await keyValueStores.handle(for: bucket).write(value, forKey: key, expectedRevision: nil)
    }

    /// Stores `value` under `key` only if the key's latest revision is `expectedRevision` (a
    /// compare-and-set); returns the new revision. Throws ``NatsError/Code/keyValueConflict``
    /// when another write came first.
    @discardableResult
    public func updateValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String, expectedRevision: UInt64) async throws -> UInt64 {
        try await keyValueStores.handle(for: bucket).write(value, forKey: key, expectedRevision: expectedRevision)
    }

    /// Removes `key` and all its revisions, leaving a purge marker (watchers see
    /// ``NatsKeyValueEntry/Operation/purge``).
    public func purgeValue(forKey key: String, inBucket bucket: String) async throws {
        try await keyValueStores.handle(for: bucket).purge(key)
    }
}

/// The name the server gave an ephemeral consumer, known only after the subscription exists.
private final class ConsumerNameBox: Sendable {
    private let storage = Mutex<String?>(nil)
    var name: String? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
