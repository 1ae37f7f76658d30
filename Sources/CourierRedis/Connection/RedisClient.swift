import Courier
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The connections publishes, acks and unblocks go over: a small pool, each connection pipelined
/// and opened again on the next command after it dropped; commands take turns across the pool.
final class RedisClient: Sendable {
    let configuration: RedisConfiguration
    private let slots: [SharedRedisConnection]
    private let turn = Atomic<Int>(0)

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.slots = (0..<max(1, configuration.connectionPoolSize)).map { _ in
            SharedRedisConnection(configuration: configuration, closedMessage: "the Redis client is closed")
        }
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

    /// Connected while any connection of the pool is open; otherwise what the pool's connects say.
    var connectionState: ConnectionState {
        let states = slots.map(\.connectionState)
        if let connected = states.first(where: { $0.status == .connected }) { return connected }
        return states.first(where: { $0.status == .reconnecting }) ?? states[0]
    }

    func close() async {
        for slot in slots { await slot.close() }
    }
}
