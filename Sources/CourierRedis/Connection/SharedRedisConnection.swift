import Courier
import NIOCore
import NIOPosix
import Synchronization

/// One Redis connection opened on first use and shared: callers that need it while it is being
/// opened wait for the same connect; one that dropped is opened again by the next caller; after
/// ``close()`` none is opened any more. The pool's connections and the pub/sub connection are each
/// one of these.
///
/// Its ``gate`` says whether the connection is up: marked down when an open connection drops or a
/// connect fails (with the error), up when a connect succeeds, finished by ``close()``. Publishes
/// wait on it during an outage (see ``RedisClient/send(_:waitingUpTo:)``).
final class SharedRedisConnection: Sendable {
    private struct State {
        var connection: RedisConnection?
        /// The connect under way, which every caller that needs the connection waits on.
        var connecting: EventLoopFuture<RedisConnection>?
        var closed = false
        /// Whether a connect ever succeeded, and the last connect's error (for the connection state).
        var everConnected = false
        var lastError: String?
    }

    /// The connection, or the connect under way.
    enum Attempt {
        case connected(RedisConnection)
        case connecting(EventLoopFuture<RedisConnection>)
    }

    let configuration: RedisConfiguration
    private let closedMessage: String
    private let state = Mutex(State())
    /// Up while a connection is open; down (since when, the last connect error) while it is not.
    let gate = ConnectionGate(isUp: false)

    /// - Parameter closedMessage: the error text for a caller after ``close()``.
    init(configuration: RedisConfiguration, closedMessage: String) {
        self.configuration = configuration
        self.closedMessage = closedMessage
    }

    /// The open connection, if there is one (it may have dropped since).
    var current: RedisConnection? { state.withLock { $0.connection } }

    /// Whether a connect ever succeeded.
    var hasConnected: Bool { state.withLock { $0.everConnected } }

    /// The connection, opened if need be.
    ///
    /// - Parameters:
    ///   - onPush: where the pushes of a connection opened by this call go.
    ///   - onOpened: called once for each connection this object opens, before any caller gets it.
    func connection(
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onOpened: (@Sendable (RedisConnection) -> Void)? = nil
    ) async throws -> RedisConnection {
        switch try attempt(onPush: onPush, onOpened: onOpened) {
        case .connected(let connection):
            return connection
        case .connecting(let future):
            return try await future.get()
        }
    }

    /// The open connection, or the connect under way, started if there is none: never waits.
    /// - Throws: ``RedisError`` `.connectionClosed` after ``close()``.
    func attempt(
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onOpened: (@Sendable (RedisConnection) -> Void)? = nil
    ) throws -> Attempt {
        enum Next {
            case use(RedisConnection)
            case wait(EventLoopFuture<RedisConnection>)
            case open(EventLoopPromise<RedisConnection>)
            case closed
        }
        let next = state.withLock { state -> Next in
            if state.closed { return .closed }
            if let connection = state.connection, connection.isActive { return .use(connection) }
            if let connecting = state.connecting { return .wait(connecting) }
            // Only a promise is made under the lock; the connect starts after it.
            let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: RedisConnection.self)
            state.connecting = promise.futureResult
            return .open(promise)
        }
        switch next {
        case .use(let connection):
            return .connected(connection)
        case .closed:
            throw RedisError(.connectionClosed, closedMessage)
        case .wait(let future):
            return .connecting(future)
        case .open(let promise):
            // The outcome is recorded before any waiter sees it, whether or not anyone still
            // waits (a publish may have given up, or been cancelled).
            RedisConnection.makeConnection(configuration, eventLoopGroup: promise.futureResult.eventLoop, onPush: onPush).whenComplete { result in
                self.connectFinished(result, promise: promise, onOpened: onOpened)
            }
            return .connecting(promise.futureResult)
        }
    }

    private func connectFinished(
        _ result: Result<RedisConnection, any Error>,
        promise: EventLoopPromise<RedisConnection>,
        onOpened: (@Sendable (RedisConnection) -> Void)?
    ) {
        switch result {
        case .success(let connection):
            let closed = state.withLock { state -> Bool in
                state.connecting = nil
                if state.closed { return true }
                state.connection = connection
                state.everConnected = true
                state.lastError = nil
                return false
            }
            if closed {
                // Closed while connecting: the connection is nobody's.
                connection.channel.close(promise: nil)
                promise.fail(RedisError(.connectionClosed, closedMessage))
                return
            }
            let host = configuration.host
            let port = configuration.port
            connection.closeFuture.whenComplete { [weak self] _ in
                self?.dropped(connection, RedisError(.connectionClosed, "the connection to \(host):\(port) closed"))
            }
            onOpened?(connection)
            gate.markUp()
            promise.succeed(connection)
        case .failure(let error):
            state.withLock { state in
                state.connecting = nil
                state.lastError = "\(error)"
            }
            gate.markDown(error)
            promise.fail(error)
        }
    }

    /// An open connection closed: an outage starts (unless the object is closing).
    private func dropped(_ connection: RedisConnection, _ error: RedisError) {
        let current = state.withLock { state in
            !state.closed && (state.connection === connection || state.connection == nil)
        }
        if current { gate.markDown(error) }
    }

    /// Closes the connection; later callers get an error, and whoever waits for the connection
    /// stops waiting. A connect under way closes its connection once it is made.
    func close() async {
        let connection = state.withLock { state in
            state.closed = true
            return state.connection
        }
        gate.finish(RedisError(.connectionClosed, closedMessage))
        await connection?.close()
    }

    /// Where this connection is, without a round trip.
    var connectionState: ConnectionState {
        state.withLock { state in
            if state.closed { return .closed() }
            if let connection = state.connection, connection.isActive { return .connected }
            if !state.everConnected { return state.lastError.map { .reconnecting(reason: $0) } ?? (state.connecting == nil ? .idle : .connecting) }
            return .reconnecting(reason: state.lastError ?? "the connection dropped; it is opened again on the next command")
        }
    }

    /// Forgets `connection` if it is the current one (it dropped).
    func forget(_ connection: RedisConnection) -> Bool {
        state.withLock { state in
            guard state.connection === connection else { return false }
            state.connection = nil
            return true
        }
    }
}
