import Logging
import NIOCore
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

    /// Writes every command, in order, before waiting for the first reply, on one connection;
    /// returns the replies in order (a batch lands in the order it was given).
    func sendPipelined(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await connection().sendPipelined(commands)
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
        var connecting: Task<RedisConnection, any Error>?
        var closed = false
    }

    let configuration: RedisConfiguration
    private let state = Mutex(State())

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    func connection() async throws -> RedisConnection {
        let task = state.withLock { state -> Task<RedisConnection, any Error>? in
            if let connection = state.connection, connection.isActive { return nil }
            if let connecting = state.connecting { return connecting }
            guard !state.closed else { return nil }
            let configuration = self.configuration
            let task = Task { try await RedisConnection.connect(configuration) }
            state.connecting = task
            return task
        }
        guard let task else {
            if let connection = state.withLock({ $0.connection }), connection.isActive { return connection }
            throw RedisError(.connectionClosed, "the Redis client is closed")
        }
        do {
            let connection = try await task.value
            state.withLock { state in
                state.connection = connection
                state.connecting = nil
            }
            return connection
        } catch {
            state.withLock { $0.connecting = nil }
            throw error
        }
    }

    func close() async {
        let connection = state.withLock { state in
            state.closed = true
            return state.connection
        }
        await connection?.close()
    }
}
