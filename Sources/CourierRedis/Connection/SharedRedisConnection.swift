@_spi(BrokerModule) import Courier
import NIOCore
import NIOPosix

/// One Redis connection opened on first use and shared: callers that need it while it is being
/// opened wait for the same connect; after ``close()`` none is opened any more. The pool's
/// connections and the pub/sub connection are each one of these.
///
/// The lifecycle is the core's ``SharedConnection``: the first connect is one try, whose error
/// its callers get at once (a wrong address should not look like an outage); a connection that
/// dropped is recovered by the next caller that needs it, with as many tries as the
/// configuration's ``ReconnectPolicy`` allows, and everyone who needs it meanwhile waits for that
/// one recovery, each until a deadline of its own (see ``RedisClient/send(_:waitingUpTo:)``).
final class SharedRedisConnection: Sendable {
    let configuration: RedisConfiguration
    private let shared: SharedConnection<RedisConnection>

    /// - Parameters:
    ///   - closedMessage: the error text for a caller after ``close()``.
    ///   - onPush: where each connection's pushes go (pub/sub messages).
    ///   - target: where each connect goes, asked again at each one (a sharded channel's node);
    ///     nil for `configuration`'s server.
    ///   - onOpened: called once for each connection opened, before any caller gets it.
    init(
        configuration: RedisConfiguration,
        closedMessage: String,
        target: (@Sendable () async throws -> RedisConfiguration)? = nil,
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onOpened: (@Sendable (RedisConnection) -> Void)? = nil
    ) {
        self.configuration = configuration
        let server = "\(configuration.host):\(configuration.port)"
        let policy = configuration.reconnect
        self.shared = SharedConnection(
            isOpen: { $0.isActive },
            lost: { _ in RedisError(.connectionClosed, "the connection to \(server) closed") },
            connect: { generation, noteAttemptError in
                var attempts = policy.attempts()
                while true {
                    do {
                        let connection = try await Self.open(target?() ?? configuration, onPush: onPush)
                        onOpened?(connection)
                        return connection
                    } catch {
                        // The first connect is one try; a recovery tries as the policy allows.
                        guard generation > 0, !(error is CancellationError), let delay = attempts.nextDelay() else { throw error }
                        noteAttemptError(error)
                        try await Task.sleep(for: delay)
                    }
                }
            },
            discard: { await $0.close() },
            closedError: { RedisError(.connectionClosed, closedMessage) }
        )
    }

    /// Opens one connection; cancellation ends the wait at once (a connection that is made
    /// afterwards is closed).
    private static func open(_ configuration: RedisConfiguration, onPush: (@Sendable (RESPValue) -> Void)?) async throws -> RedisConnection {
        let future = RedisConnection.makeConnection(configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, onPush: onPush)
        let result = PendingResult<RedisConnection>()
        future.whenComplete { result.resolve($0) }
        do {
            // No deadline: the connect timeout bounds the connect.
            return try await result.value()!
        } catch is CancellationError {
            future.whenSuccess { $0.channel.close(promise: nil) }
            throw CancellationError()
        }
    }

    /// The open connection, if there is one (it may have dropped since).
    var current: RedisConnection? { shared.current }

    /// Whether a connect ever succeeded.
    var hasConnected: Bool { shared.hasConnected }

    /// Whether ``close()`` was called.
    var isClosed: Bool {
        shared.withPhase { phase, _ in
            if case .closed = phase { return true }
            return false
        }
    }

    /// Since when the connection is down after it was lost, and the last error.
    var outage: ConnectionGate.Outage? { shared.outage }

    /// The connection, opened (or recovered) if need be.
    ///
    /// - Parameter deadline: how long to wait for a connection being made; nil waits for the
    ///   connect or recovery to end.
    /// - Returns: nil when `deadline` passed first (the recovery goes on).
    /// - Throws: the connect's error; ``RedisError`` `.connectionClosed` after ``close()``;
    ///   `CancellationError` at once when the task is cancelled.
    func connection(deadline: ContinuousClock.Instant? = nil) async throws -> RedisConnection? {
        try await shared.connection(deadline: deadline)
    }

    /// The connection, opened if need be, waiting as long as that takes.
    func connection() async throws -> RedisConnection {
        guard let connection = try await shared.connection(deadline: nil) else { throw CancellationError() }
        return connection
    }

    /// Whether `connection` is the current one.
    func isCurrent(_ connection: RedisConnection) -> Bool {
        shared.current === connection
    }

    /// Closes the connection for good; later callers get an error, and whoever waits for the
    /// connection stops waiting. A connect under way closes its connection once it is made.
    func close() async {
        await shared.close(permanently: true)
    }

    /// Where this connection is, without a round trip.
    var connectionState: ConnectionState {
        let lastError = shared.lastAttemptError.map { "\($0)" }
        let outage = shared.outage.map { $0.lastError.map { "\($0)" } ?? "the connection dropped" }
        return shared.withPhase { phase, _ in
            switch phase {
            case .closed:
                return .closed()
            case .live(let connection, _) where connection.isActive:
                return .connected
            case .live, .connecting(_, generation: 1...), .idle(next: 1...):
                return .reconnecting(reason: outage ?? lastError ?? "the connection dropped; it is opened again on the next command")
            case .connecting:
                return lastError.map { .reconnecting(reason: $0) } ?? .connecting
            case .idle:
                return lastError.map { .reconnecting(reason: $0) } ?? .idle
            }
        }
    }
}
