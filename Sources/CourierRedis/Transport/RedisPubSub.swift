@_spi(BrokerModule) import Courier
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A pub/sub message as the subscriber connection received it.
struct PubSubMessage: Sendable {
    var channel: String
    var pattern: String?
    var payload: ByteBuffer
}

/// The messages of one channel or pattern subscription, waiting for its subscriber: the core's
/// ``HandOffQueue``, bounded softly. Above its capacity (the high watermark) the shared connection
/// stops reading from its socket (TCP then holds the rest, and Redis its output buffer) until the
/// subscriber has caught up to half of it.
typealias PushBuffer = HandOffQueue<PubSubMessage>

/// How a pub/sub subscription listens: the three pairs of Redis commands.
enum PubSubMode: Sendable, Hashable {
    /// `SUBSCRIBE`: a channel, which every node of a cluster carries.
    case channel
    /// `PSUBSCRIBE`: a glob over channel names.
    case pattern
    /// `SSUBSCRIBE` (Redis 7): a sharded channel, carried only by the node that owns its slot.
    case shardChannel

    var subscribeCommand: String {
        switch self {
        case .channel: "SUBSCRIBE"
        case .pattern: "PSUBSCRIBE"
        case .shardChannel: "SSUBSCRIBE"
        }
    }

    var unsubscribeCommand: String {
        switch self {
        case .channel: "UNSUBSCRIBE"
        case .pattern: "PUNSUBSCRIBE"
        case .shardChannel: "SUNSUBSCRIBE"
        }
    }

    /// The key a route is filed under: one name may be subscribed in each mode.
    func key(_ name: String) -> String {
        switch self {
        case .channel: "c:" + name
        case .pattern: "p:" + name
        case .shardChannel: "s:" + name
        }
    }
}

/// The one connection every channel and pattern subscription of a broker shares, re-established
/// with backoff (and every subscription renewed) when it drops.
///
/// A broker has one for its channels and patterns, and one for each sharded channel, whose
/// connection goes to the cluster node that owns the channel's slot (`target`): asked again at
/// each reconnect, so a failover or a resharding moves the subscription with the slot.
///
/// The renewing is ``run()``'s work, which the transport's run loop runs for as long as the
/// broker does: a dropped connection only asks for it. Subscribing connects on its own, so a
/// transport that is not run (a publish-only broker's reply inboxes) still works; it just does not
/// renew subscriptions behind a subscriber's back.
final class RedisPubSub: Sendable {
    private struct Route {
        var buffer: PushBuffer
        var mode: PubSubMode
        var name: String
    }

    private struct State {
        var routes: [String: Route] = [:]
        var confirmations: [String: [Latch]] = [:]
        var pausedBuffers = 0
        var closed = false
    }

    private let configuration: RedisConfiguration
    private let logger: Logger
    private let state = Mutex(State())
    private let shared: SharedRedisConnection
    private let highWatermark = 1024
    /// One element each time the connection dropped with subscriptions on it; the newest only,
    /// since one renewal serves any number of drops.
    private let renewals: AsyncStream<Void>
    private let renewalNeeded: AsyncStream<Void>.Continuation

    /// - Parameter target: where each connection goes, asked at each connect; nil for
    ///   `configuration`'s server (in a cluster, any node).
    init(configuration: RedisConfiguration, logger: Logger, target: (@Sendable () async throws -> RedisConfiguration)? = nil) {
        self.configuration = configuration
        self.logger = logger
        // The connection is made before `self` exists: the relay hands its events on once it does.
        let relay = Relay()
        self.shared = SharedRedisConnection(
            configuration: configuration,
            closedMessage: "the broker is closing",
            target: target,
            onPush: { push in relay.pubSub?.received(push) },
            onOpened: { connection in
                connection.closeFuture.whenComplete { _ in relay.pubSub?.connectionClosed(connection) }
            }
        )
        (renewals, renewalNeeded) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        relay.pubSub = self
    }

    /// Where the connection's pushes and closes go: the pub/sub, held weakly (the connection's
    /// closures must not keep it alive).
    private final class Relay: Sendable {
        private struct Target {
            weak var pubSub: RedisPubSub?
        }

        private let target = Mutex(Target())

        var pubSub: RedisPubSub? {
            get { target.withLock { $0.pubSub } }
            set { target.withLock { $0.pubSub = newValue } }
        }
    }

    /// Subscribes to a channel, pattern or sharded channel; returns once Redis confirmed, so a
    /// message published afterwards is received.
    func subscribe(_ name: String, mode: PubSubMode) async throws -> PushBuffer {
        let key = mode.key(name)
        let buffer = PushBuffer(capacity: highWatermark, resumeBelow: highWatermark / 2) { [weak self] full in self?.pressure(full) }
        state.withLock { $0.routes[key] = Route(buffer: buffer, mode: mode, name: name) }
        do {
            let connection = try await connection()
            // Registered before the command goes out, so the confirmation cannot arrive unseen;
            // a closing connection opens it too (see `connectionClosed`).
            let confirmation = Latch()
            state.withLock { $0.confirmations[key, default: []].append(confirmation) }
            try await connection.sendWithoutReply(RedisCommand(mode.subscribeCommand, [.string(name)]))
            await confirmation.wait()
        } catch {
            _ = state.withLock { $0.routes.removeValue(forKey: key) }
            throw error
        }
        return buffer
    }

    func unsubscribe(_ name: String, mode: PubSubMode) async {
        let (route, connection) = state.withLock { state in
            (state.routes.removeValue(forKey: mode.key(name)), shared.current)
        }
        route?.buffer.finish(discardingElements: true)
        try? await connection?.sendWithoutReply(RedisCommand(mode.unsubscribeCommand, [.string(name)]))
    }

    /// Renews every subscription each time the connection drops, until ``close()`` or until the
    /// task is cancelled: the transport's run loop.
    func run() async {
        for await _ in renewals {
            await resubscribe()
        }
    }

    /// The master at `endpoint` was replaced (Sentinel's `+switch-master`): a connection to it is
    /// closed, and the run loop renews its subscriptions on the new master. A demoted master
    /// would go on relaying the new one's messages, but only until it goes away or is resynced.
    func leave(_ endpoint: RedisEndpoint) {
        guard let connection = shared.current, let address = connection.channel.remoteAddress,
            address.port == endpoint.port, address.ipAddress == endpoint.host
        else { return }
        logger.info("Redis pub/sub: leaving the replaced master; subscribing again on the new one", metadata: ["courier.redis.old": "\(endpoint)"])
        connection.channel.close(promise: nil)
    }

    func close() async {
        let routes = state.withLock { state in
            state.closed = true
            defer { state.routes = [:] }
            return state.routes.values.map(\.buffer)
        }
        renewalNeeded.finish()
        for buffer in routes { buffer.finish(discardingElements: true) }
        await shared.close()
    }

    // MARK: - The connection

    private func connection() async throws -> RedisConnection {
        try await shared.connection()
    }

    private func connectionClosed(_ connection: RedisConnection) {
        let dropped = shared.isCurrent(connection)
        let (routes, confirmations, closed) = state.withLock { state in
            if dropped { state.pausedBuffers = 0 }
            let confirmations = state.confirmations.values.flatMap { $0 }
            state.confirmations = [:]
            return (state.routes.count, confirmations, state.closed)
        }
        for confirmation in confirmations { confirmation.open() }
        guard !closed, routes > 0 else { return }
        logger.warning("Redis pub/sub connection lost; reconnecting and subscribing again", metadata: ["courier.subscriptions": "\(routes)"])
        renewalNeeded.yield()
    }

    /// Reconnects and renews every subscription; gives up when the broker closes, the run loop is
    /// cancelled, or the reconnect policy gives up (the recovery is the shared connection's, with
    /// the policy's tries; a connection that drops again while subscribing is recovered again, as
    /// often as the policy allows).
    private func resubscribe() async {
        var attempts = configuration.reconnect.attempts()
        while !state.withLock({ $0.closed }), !Task.isCancelled {
            let connection: RedisConnection
            do {
                connection = try await self.connection()
            } catch {
                if !(error is CancellationError), !state.withLock({ $0.closed }) {
                    logger.error(
                        "Redis pub/sub: giving up reconnecting; its subscriptions receive nothing more",
                        metadata: ["error": "\(error)"]
                    )
                }
                return
            }
            do {
                let (routes, confirmations) = state.withLock { state in
                    let routes = Array(state.routes)
                    let confirmations = routes.map { key, _ in
                        let confirmation = Latch()
                        state.confirmations[key, default: []].append(confirmation)
                        return confirmation
                    }
                    return (routes.map(\.value), confirmations)
                }
                for route in routes {
                    try await connection.sendWithoutReply(RedisCommand(route.mode.subscribeCommand, [.string(route.name)]))
                }
                // Renewed once Redis confirmed each; a connection that drops meanwhile opens
                // them too, and asks for another renewal.
                for confirmation in confirmations { await confirmation.wait() }
                guard connection.isActive else { throw RedisError(.connectionClosed, "the connection dropped while subscribing again") }
                logger.info("Redis pub/sub connection re-established", metadata: ["courier.subscriptions": "\(routes.count)"])
                return
            } catch {
                guard let delay = attempts.nextDelay() else {
                    logger.error(
                        "Redis pub/sub: giving up subscribing again; its subscriptions receive nothing more",
                        metadata: ["error": "\(error)", "courier.attempts": "\(attempts.count)"]
                    )
                    return
                }
                logger.debug("Redis pub/sub: subscribing again failed", metadata: ["error": "\(error)", "courier.retry_in": "\(delay)"])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return
                }
            }
        }
    }

    // MARK: - Pushes (on the connection's event loop)

    private func received(_ push: RESPValue) {
        guard let elements = push.elements, let kind = elements.first?.string else { return }
        switch kind {
        case "message" where elements.count >= 3:
            guard let channel = elements[1].string, let payload = elements[2].bytes else { return }
            route(PubSubMode.channel.key(channel))?.append(PubSubMessage(channel: channel, pattern: nil, payload: payload))
        case "smessage" where elements.count >= 3:
            guard let channel = elements[1].string, let payload = elements[2].bytes else { return }
            route(PubSubMode.shardChannel.key(channel))?.append(PubSubMessage(channel: channel, pattern: nil, payload: payload))
        case "pmessage" where elements.count >= 4:
            guard let pattern = elements[1].string, let channel = elements[2].string, let payload = elements[3].bytes else { return }
            route(PubSubMode.pattern.key(pattern))?.append(PubSubMessage(channel: channel, pattern: pattern, payload: payload))
        case "subscribe", "psubscribe", "ssubscribe":
            guard elements.count >= 2, let name = elements[1].string else { return }
            let mode: PubSubMode = kind == "subscribe" ? .channel : kind == "psubscribe" ? .pattern : .shardChannel
            let waiters = state.withLock { $0.confirmations.removeValue(forKey: mode.key(name)) } ?? []
            for waiter in waiters { waiter.open() }
        case "sunsubscribe":
            // Unasked (the route is still there): the channel's slot moved to another node, a
            // resharding or a failover. Dropping the connection renews the subscription, on the
            // node that owns the slot now.
            guard elements.count >= 2, let name = elements[1].string,
                state.withLock({ $0.routes[PubSubMode.shardChannel.key(name)] != nil })
            else { return }
            logger.warning("Redis moved a sharded channel's slot; subscribing again where it is now", metadata: ["messaging.destination.name": "\(name)"])
            shared.current?.channel.close(promise: nil)
        default:
            break
        }
    }

    private func route(_ key: String) -> PushBuffer? {
        state.withLock { $0.routes[key]?.buffer }
    }

    private func pressure(_ full: Bool) {
        let (connection, change) = state.withLock { state -> (RedisConnection?, Bool?) in
            let before = state.pausedBuffers
            state.pausedBuffers = max(0, before + (full ? 1 : -1))
            if before == 0 && state.pausedBuffers == 1 { return (shared.current, false) }
            if before == 1 && state.pausedBuffers == 0 { return (shared.current, true) }
            return (shared.current, nil)
        }
        if let change { connection?.setReading(change) }
    }
}
