import Courier
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The connections publishes, acks and unblocks go over: a small pool, each connection pipelined
/// and opened again on the next command after it dropped; commands take turns across the pool.
///
/// For a Redis Cluster, the client routes instead: each command goes to the pool of the node that
/// owns its key (``RedisClusterRouter``), and the pool above is not used.
final class RedisClient: Sendable {
    let configuration: RedisConfiguration
    private let slots: [SharedRedisConnection]
    private let turn = Atomic<Int>(0)
    /// A Redis Cluster's nodes, one client each; nil for one server.
    private let cluster: RedisClusterRouter?

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
        if configuration.cluster != nil {
            cluster = RedisClusterRouter(configuration: configuration)
            slots = []
        } else {
            cluster = nil
            slots = (0..<max(1, configuration.connectionPoolSize)).map { _ in
                SharedRedisConnection(configuration: configuration, closedMessage: "the Redis client is closed")
            }
        }
    }

    /// Sends `command`; in a cluster, to the node of `key` (by default the command's own key).
    func send(_ command: RedisCommand, routedBy key: String? = nil) async throws -> RESPValue {
        if let cluster { return try await cluster.send(command, routedBy: key) }
        return try await connection().send(command)
    }

    /// The next connection of the pool, opened if it is not (in a cluster, of any node's pool).
    func connection() async throws -> RedisConnection {
        if let cluster { return try await cluster.client(forKey: nil).connection() }
        return try await nextSlot().connection()
    }

    /// Where a connection of its own for reading `key` (a list or stream subscriber's) goes: in a
    /// cluster, the node that owns the key.
    func configuration(forReading key: String) async throws -> RedisConfiguration {
        guard let cluster else { return configuration }
        return try await cluster.nodeConfiguration(forKey: key)
    }

    /// A reader lost its node, or was told `MOVED`: in a cluster, the slot map is asked for again.
    func nodeLost() {
        cluster?.markStale()
    }

    private func nextSlot() -> SharedRedisConnection {
        let index = turn.wrappingAdd(1, ordering: .relaxed).oldValue
        return slots[(index & Int.max) % slots.count]
    }

    /// Sends `commands` for a publish (pipelined on one connection when there are several) and
    /// returns their replies, waiting out an outage: while Redis is unreachable after the pool had
    /// reached it, the publish waits for the connection's recovery (one for every caller, with the
    /// reconnect policy's tries) until `timeout` from now, the send included.
    ///
    /// Only what certainly never reached Redis is sent again: commands refused before they were
    /// written, replies of `LOADING` (a restarted server reading its data back), after the
    /// policy's next delay, and `READONLY` (a demoted master, behind Sentinel) on a new connection. A command written on a connection that then dropped fails
    /// (`.connectionClosed`): Redis may have run it. Before the pool ever connected a connect
    /// error is thrown at once (a wrong address should not look like an outage).
    ///
    /// - Throws: ``RedisError`` `.connectionUnavailable` (naming the outage) when the connection was
    ///   not back within `timeout`, or the reconnect policy gave up first; `CancellationError` at
    ///   once when the task is cancelled while waiting.
    func send(_ commands: [RedisCommand], waitingUpTo timeout: Duration) async throws -> [RESPValue] {
        if let cluster { return try await cluster.send(commands, waitingUpTo: timeout) }
        let slot = nextSlot()
        let deadline = ContinuousClock.now + timeout
        // The tries of a connection that is up yet refuses (loading, or its drop not noticed yet),
        // or of a slot that never connected while the pool did.
        var attempts = configuration.reconnect.attempts()
        var lastFailure: (any Error)?
        while true {
            if let connection = try await connection(of: slot, until: deadline, timeout: timeout, lastFailure: &lastFailure) {
                do {
                    // The reply may take the rest of the publish's time (at most the command timeout).
                    let limit = max(min(configuration.commandTimeout, deadline - .now), .milliseconds(1))
                    if commands.count == 1 { return [try await connection.send(commands[0], timeout: limit)] }
                    return try await connection.send(pipelined: commands, timeout: limit)
                } catch let error as RedisError where Self.isSafeToSendAgain(error) && hasConnected {
                    lastFailure = error
                    // A demoted master (behind Sentinel): its connection goes, and the next one
                    // asks the sentinels for the new master.
                    if error.serverCode == .readOnly { await connection.close() }
                    // Dropped: the next round waits for its recovery, at once.
                    if !connection.isActive { continue }
                }
            }
            guard let delay = attempts.nextDelay() else {
                // The reconnect policy gave up before the publish timeout did.
                throw unavailable(outage(waitedOn: slot), lastFailure: lastFailure, timeout: timeout)
            }
            try await Task.sleep(until: min(deadline, .now + delay), clock: .continuous)
            if ContinuousClock.now >= deadline {
                throw unavailable(outage(waitedOn: slot), lastFailure: lastFailure, timeout: timeout)
            }
        }
    }

    /// `slot`'s connection for a publish, waiting for its connect or recovery until `deadline`.
    ///
    /// - Returns: nil when this slot's first connect failed while the pool did reach Redis (an
    ///   outage: the caller tries again after the policy's next delay).
    /// - Throws: the connect's error before the pool ever connected; `.connectionUnavailable`
    ///   when `deadline` passed or the recovery gave up; the closed error; `CancellationError`.
    private func connection(
        of slot: SharedRedisConnection,
        until deadline: ContinuousClock.Instant,
        timeout: Duration,
        lastFailure: inout (any Error)?
    ) async throws -> RedisConnection? {
        let connection: RedisConnection?
        do {
            connection = try await slot.connection(deadline: deadline)
        } catch let error where !(error is CancellationError) && !slot.isClosed && hasConnected {
            guard !slot.hasConnected else {
                // The recovery gave up: the reconnect policy's last try failed.
                throw unavailable(outage(waitedOn: slot), lastFailure: error, timeout: timeout)
            }
            lastFailure = error
            return nil
        }
        guard let connection else { throw unavailable(outage(waitedOn: slot), lastFailure: lastFailure, timeout: timeout) }
        return connection
    }

    /// Whether any connection of the pool ever connected.
    private var hasConnected: Bool { slots.contains { $0.hasConnected } }

    /// Whether `error` says the command never ran, so that sending it again cannot duplicate it.
    private static func isSafeToSendAgain(_ error: RedisError) -> Bool {
        error.commandNotSent || (error.code == .server && (error.serverCode == .loading || error.serverCode == .readOnly))
    }

    /// The outage a publish waited out on `slot`: since when the pool is cut off (a slot that never
    /// connected has no outage of its own, so the time comes from one that did), and the last
    /// connect error of `slot`'s own tries.
    private func outage(waitedOn slot: SharedRedisConnection) -> ConnectionGate.Outage? {
        let reference = slot.hasConnected ? slot : slots.first { $0.hasConnected } ?? slot
        guard var outage = reference.outage else { return slot.outage }
        if let lastError = slot.outage?.lastError { outage.lastError = lastError }
        return outage
    }

    private func unavailable(_ outage: ConnectionGate.Outage?, lastFailure: (any Error)?, timeout: Duration) -> RedisError {
        let server = configuration.sentinels.map { "the master of '\($0.masterName)'" } ?? "\(configuration.host):\(configuration.port)"
        guard let outage else {
            // The connection was up, but every try was refused (Redis loading its data, say).
            let reason = lastFailure.map { "\($0)" } ?? "no reply"
            return RedisError(.connectionUnavailable, "Redis at \(server) did not take the publish within the publish timeout (\(timeout)): \(reason)", underlying: lastFailure)
        }
        return RedisError(
            .connectionUnavailable,
            "no connection to Redis at \(server) within the publish timeout (\(timeout)): \(outage.summary)",
            underlying: outage.lastError ?? lastFailure
        )
    }

    /// Connected while any connection of the pool is open; otherwise what the pool's connects say.
    var connectionState: ConnectionState {
        if let cluster { return cluster.connectionState }
        let states = slots.map(\.connectionState)
        if let connected = states.first(where: { $0.status == .connected }) { return connected }
        return states.first(where: { $0.status == .reconnecting }) ?? states[0]
    }

    func close() async {
        await cluster?.close()
        for slot in slots { await slot.close() }
    }
}
