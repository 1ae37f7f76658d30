public import Courier
public import Logging
import NIOCore
import Synchronization

/// The Redis broker: `Broker<RedisTransport>`.
public typealias RedisBroker = Broker<RedisTransport>
/// Subscribers declared apart from a broker and included into brokers of this kind (FastStream's `RedisRouter`).
public typealias RedisRouter = BrokerRouter<RedisTransport>

extension Broker where Transport == RedisTransport {
    /// Creates a Redis broker for `redis://[user:password@]host[:port][/db]`.
    public convenience init(
        url: String = "redis://127.0.0.1:6379",
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.redis"),
        options: BrokerOptions = BrokerOptions()
    ) throws {
        try self.init(configuration: RedisConfiguration(url: url), middlewares: middlewares, logger: logger, options: options)
    }

    /// Creates a Redis broker.
    public convenience init(
        configuration: RedisConfiguration,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.redis"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.init(transport: RedisTransport(configuration: configuration, logger: logger), middlewares: middlewares, logger: logger, options: options)
    }
}

/// Moves messages through Redis pub/sub channels, lists and streams, in FastStream's envelope.
///
/// Pub/sub and lists deliver at most once: there is nothing to ack, so every ack policy settles
/// nothing there. Stream consumer groups are at least once: ack is `XACK`, nack leaves the
/// entries pending and reads them again, reject leaves them pending (visible to `XPENDING` and
/// `XAUTOCLAIM`) without reading them again.
public final class RedisTransport: BrokerTransport {
    public typealias Source = RedisSource
    public typealias Destination = RedisDestination

    static let replyPrefix = "courier.reply."

    public let configuration: RedisConfiguration
    let client: RedisClient
    let pubSub: RedisPubSub
    /// In a cluster, each sharded channel's pub/sub, on the node that owns its slot (elsewhere
    /// they share ``pubSub``); ``run()`` renews each, fed by `newShardedPubSubs`.
    private let shardedPubSubs = Mutex<[String: RedisPubSub]>([:])
    private let newShardedPubSubs: AsyncStream<RedisPubSub>
    private let shardedPubSubMade: AsyncStream<RedisPubSub>.Continuation
    private let logger: Logger
    private let blockingSubscriptions = Mutex<[RedisBlockingSubscription]>([])

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "courier.redis")) {
        self.configuration = configuration
        self.logger = logger
        self.client = RedisClient(configuration: configuration)
        self.pubSub = RedisPubSub(configuration: configuration, logger: logger)
        (newShardedPubSubs, shardedPubSubMade) = AsyncStream.makeStream(of: RedisPubSub.self)
    }

    public var description: BrokerDescription {
        BrokerDescription(messagingSystem: "redis", serverAddress: configuration.host, serverPort: configuration.port)
    }

    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {
        _ = try await client.connection()
    }

    /// Renews the pub/sub subscriptions whenever their shared connection drops, and behind
    /// Sentinel follows `+switch-master` (see ``RedisSentinelWatch``), for as long as the broker
    /// runs; ends when the transport closes or the broker cancels it.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            if let sentinels = configuration.sentinels {
                let watch = RedisSentinelWatch(sentinels: sentinels, configuration: configuration, logger: logger)
                let pubSub = pubSub
                group.addTask { await watch.run { pubSub.leave($0.old) } }
            }
            group.addTask { await self.pubSub.run() }
            for await sharded in newShardedPubSubs {
                group.addTask { await sharded.run() }
            }
            // The transport closed (or the run was cancelled): nothing is left to watch.
            group.cancelAll()
        }
    }

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let destination = try destination(of: publication)
        let allocator = ByteBufferAllocator()
        let envelopes = try publication.messages.map { try RedisEnvelope.encode($0, allocator: allocator) }
        let name = destination.name
        let replies: [RESPValue]
        // Each waits out a reconnect, up to the publish timeout (RedisClient.send(_:waitingUpTo:)).
        let timeout = configuration.publishTimeout
        switch destination.kind {
        case .list:
            // One RPUSH for a batch: the messages land together, in order.
            _ = try await client.send([RedisCommand("RPUSH", [.string(name)] + envelopes.map { .bytes($0) })], waitingUpTo: timeout)
            return publication.plainReceipts
        case .stream(let maxLength):
            var trim: [RedisCommand.Argument] = []
            if let maxLength { trim = ["MAXLEN", "~", .integer(maxLength)] }
            let commands = envelopes.map { RedisCommand("XADD", [.string(name)] + trim + ["*", "__data__", .bytes($0)]) }
            replies = try await client.send(commands, waitingUpTo: timeout)
        case .channel:
            let command = destination.sharded ? "SPUBLISH" : "PUBLISH"
            let commands = envelopes.map { RedisCommand(command, [.string(name), .bytes($0)]) }
            replies = try await client.send(commands, waitingUpTo: timeout)
        }
        return zip(publication.messages, replies).map { message, reply in
            let info: RedisPublishInfo
            if case .stream = destination.kind {
                info = RedisPublishInfo(streamEntryID: reply.string)
            } else {
                info = RedisPublishInfo(receivers: reply.integer.map { Int($0) })
            }
            return PublishReceipt(messageID: message.messageID, details: info)
        }
    }

    public func subscribe(to source: RedisSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        let batch = options.batch
        switch source.kind {
        case .channel, .pattern:
            let (mode, name) = source.pubSub
            let pubSub = mode == .shardChannel ? shardedPubSub(for: name) : pubSub
            let buffer = try await pubSub.subscribe(name, mode: mode)
            return RedisPubSubSubscription(source: source, buffer: buffer, pubSub: pubSub, logger: logger)
        case .list, .stream:
            let subscription = RedisBlockingSubscription(source: source, batch: batch, client: client, logger: logger)
            try await subscription.start()
            blockingSubscriptions.withLock { $0.append(subscription) }
            return subscription
        }
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        let name = Self.replyPrefix + MessageIdentifier.make()
        let buffer = try await pubSub.subscribe(name, mode: .channel)
        let subscription = RedisPubSubSubscription(source: .channel(name), buffer: buffer, pubSub: pubSub, logger: logger)
        return ReplyInbox(destination: name, subscription: subscription)
    }

    public func close() async {
        let subscriptions = blockingSubscriptions.withLock { $0 }
        for subscription in subscriptions { await subscription.closeConnection() }
        shardedPubSubMade.finish()
        for sharded in shardedPubSubs.withLock({ Array($0.values) }) { await sharded.close() }
        await pubSub.close()
        await client.close()
    }

    /// The pub/sub a sharded channel's subscription goes on: in a cluster, one of its own whose
    /// connection goes to the node that owns the channel's slot, asking for the slot map again
    /// at each connect (connects are rare: the first subscription and each reconnect, when the
    /// old map may name a dead node); elsewhere the broker's one connection, since one server
    /// carries every sharded channel.
    private func shardedPubSub(for channel: String) -> RedisPubSub {
        guard configuration.cluster != nil else { return pubSub }
        return shardedPubSubs.withLock { pubSubs in
            if let existing = pubSubs[channel] { return existing }
            let client = self.client
            let made = RedisPubSub(configuration: configuration, logger: logger) {
                client.nodeLost()
                return try await client.configuration(forReading: channel)
            }
            pubSubs[channel] = made
            shardedPubSubMade.yield(made)
            return made
        }
    }
}
