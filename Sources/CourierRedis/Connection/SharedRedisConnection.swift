import Courier
import NIOCore
import NIOPosix
import Synchronization

/// One Redis connection opened on first use and shared: callers that need it while it is being
/// opened wait for the same connect; one that dropped is opened again by the next caller; after
/// ``close()`` none is opened any more. The pool's connections and the pub/sub connection are each
/// one of these.
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

    let configuration: RedisConfiguration
    private let closedMessage: String
    private let state = Mutex(State())

    /// - Parameter closedMessage: the error text for a caller after ``close()``.
    init(configuration: RedisConfiguration, closedMessage: String) {
        self.configuration = configuration
        self.closedMessage = closedMessage
    }

    /// The open connection, if there is one (it may have dropped since).
    var current: RedisConnection? { state.withLock { $0.connection } }

    /// The connection, opened if need be.
    ///
    /// - Parameters:
    ///   - onPush: where the pushes of a connection opened by this call go.
    ///   - onOpened: called once for each connection this object opens, before any caller gets it.
    func connection(
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onOpened: (@Sendable (RedisConnection) -> Void)? = nil
    ) async throws -> RedisConnection {
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
        let connecting: EventLoopFuture<RedisConnection>
        var opening = false
        switch next {
        case .use(let connection):
            return connection
        case .closed:
            throw RedisError(.connectionClosed, closedMessage)
        case .wait(let future):
            connecting = future
        case .open(let promise):
            RedisConnection.makeConnection(configuration, eventLoopGroup: promise.futureResult.eventLoop, onPush: onPush).cascade(to: promise)
            connecting = promise.futureResult
            opening = true
        }
        let connection: RedisConnection
        do {
            connection = try await connecting.get()
        } catch {
            state.withLock { state in
                if state.connecting === connecting { state.connecting = nil }
                state.lastError = "\(error)"
            }
            throw error
        }
        let closed = state.withLock { state -> Bool in
            if state.connecting === connecting {
                state.connecting = nil
                state.connection = connection
            }
            state.everConnected = true
            state.lastError = nil
            return state.closed
        }
        if closed {
            // Closed while connecting: the connection is nobody's.
            await connection.close()
            throw RedisError(.connectionClosed, closedMessage)
        }
        if opening { onOpened?(connection) }
        return connection
    }

    /// Closes the connection; later callers get an error. A connect under way is closed by
    /// whoever waits for it, seeing `closed`.
    func close() async {
        let connection = state.withLock { state in
            state.closed = true
            return state.connection
        }
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
