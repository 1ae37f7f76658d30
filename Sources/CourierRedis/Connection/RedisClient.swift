import Logging
import NIOCore
import Synchronization

/// The connection publishes, acks and unblocks go over: pipelined, and opened again on the next
/// command after it dropped.
final class RedisClient: Sendable {
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

    func send(_ command: RedisCommand) async throws -> RESPValue {
        try await connection().send(command)
    }

    /// Writes every command before waiting for the first reply; returns the replies in order.
    func sendPipelined(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        let connection = try await connection()
        return try await withThrowingTaskGroup(of: (Int, RESPValue).self) { group in
            for (index, command) in commands.enumerated() {
                group.addTask { (index, try await connection.send(command)) }
            }
            var replies = [RESPValue](repeating: .null, count: commands.count)
            for try await (index, reply) in group { replies[index] = reply }
            return replies
        }
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
