import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The connections publishes, acks and unblocks go over: a small pool, each connection pipelined
/// and opened again on the next command after it dropped; commands take turns across the pool.
final class RedisClient: Sendable {
    let configuration: RedisConfiguration
    private let slots: [PooledConnection]
    private let turn = Atomic<Int>(0)

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.slots = (0..<max(1, configuration.connectionPoolSize)).map { _ in PooledConnection(configuration: configuration) }
    }

    func send(_ command: RedisCommand) async throws -> RESPValue {
        try await connection().send(command)
    }

    /// Writes every command before waiting for the first reply, in order, on one connection;
    /// returns the replies in order.
    func sendPipelined(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await connection().send(pipelined: commands)
    }

    /// The next connection of the pool, opened if it is not.
    func connection() async throws -> RedisConnection {
        let index = turn.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await slots[(index & Int.max) % slots.count].connection()
    }

    func close() async {
        for slot in slots { await slot.close() }
    }
}

/// One connection of the pool.
private final class PooledConnection: Sendable {
    private struct State {
        var connection: RedisConnection?
        /// The connect under way, which every command that needs the connection waits on.
        var connecting: EventLoopFuture<RedisConnection>?
        var closed = false
    }

    let configuration: RedisConfiguration
    private let state = Mutex(State())

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    func connection() async throws -> RedisConnection {
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
        switch next {
        case .use(let connection):
            return connection
        case .closed:
            throw RedisError(.connectionClosed, "the Redis client is closed")
        case .wait(let future):
            connecting = future
        case .open(let promise):
            RedisConnection.makeConnection(configuration, eventLoopGroup: promise.futureResult.eventLoop).cascade(to: promise)
            connecting = promise.futureResult
        }
        let connection: RedisConnection
        do {
            connection = try await connecting.get()
        } catch {
            state.withLock { state in
                if state.connecting === connecting { state.connecting = nil }
            }
            throw error
        }
        let closed = state.withLock { state -> Bool in
            if state.connecting === connecting {
                state.connecting = nil
                state.connection = connection
            }
            return state.closed
        }
        if closed {
            // Closed while connecting: the connection is nobody's.
            await connection.close()
            throw RedisError(.connectionClosed, "the Redis client is closed")
        }
        return connection
    }

    func close() async {
        let connection = state.withLock { state in
            state.closed = true
            return state.connection
        }
        await connection?.close()
    }
}
