import Courier
import Synchronization

/// The commands of a client of a Redis Cluster, each sent to the master that owns its key's slot
/// (``RedisCluster`` says how), over one ``RedisClient`` pool per node.
///
/// The slot map is asked of the nodes it knows (the ones of the last map first, then the seeds)
/// whenever it is missing or found stale: an answer `MOVED`, a node that cannot be reached. Only
/// one refresh runs at a time; callers that find one under way wait for it.
final class RedisClusterRouter: Sendable {
    /// The number of hash slots of every Redis Cluster.
    static let slotCount = 16384

    private struct State {
        /// The owner of each slot (by index); empty until the first map.
        var owners: [RedisEndpoint?] = []
        /// Whether the map must be asked for again before its next use.
        var stale = true
        var clients: [RedisEndpoint: RedisClient] = [:]
        /// The refresh under way, which every caller that needs the map waits for.
        var refresh: Task<Void, any Error>?
        var closed = false
    }

    let configuration: RedisConfiguration
    private let state = Mutex(State())

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    // MARK: - Sending

    /// Sends `command` to the owner of `key` (the command's own key when nil; any node for a
    /// command without one), following `MOVED` and `ASK`.
    func send(_ command: RedisCommand, routedBy key: String? = nil) async throws -> RESPValue {
        try await send([command], routedBy: key) { client, commands in [try await client.send(commands[0])] }[0]
    }

    /// A publish's commands (one key), with ``RedisClient/send(_:waitingUpTo:)``'s waiting for the
    /// connection: while the key's master is unreachable the map is asked for again, until the
    /// cluster names its successor or `timeout` passed.
    func send(_ commands: [RedisCommand], waitingUpTo timeout: Duration) async throws -> [RESPValue] {
        let deadline = ContinuousClock.now + timeout
        var attempts = configuration.reconnect.attempts()
        while true {
            do {
                // Each try waits for its node a second at most: a dead master does not come back,
                // its replica is promoted instead, and the next map names it.
                let wait = max(min(deadline - .now, configuration.connectTimeout, .seconds(1)), .milliseconds(1))
                return try await send(commands, routedBy: nil) { client, commands in try await client.send(commands, waitingUpTo: wait) }
            } catch let error as RedisError
                where error.code == .connectionUnavailable || (error.code == .connectionClosed && error.commandNotSent)
                || error.serverCode == .clusterDown
            {
                // The key's master is unreachable (or the cluster says its slot has none yet):
                // nothing was sent; the next map may name its successor.
                markStale()
                guard let delay = attempts.nextDelay(), ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
            }
        }
    }

    private func send(
        _ commands: [RedisCommand],
        routedBy explicitKey: String?,
        _ body: (RedisClient, [RedisCommand]) async throws -> [RESPValue]
    ) async throws -> [RESPValue] {
        let key = explicitKey ?? commands.first.flatMap(Self.key(of:))
        var client = try await self.client(forKey: key)
        // A slot moves at most a few times during one command: a resharding, a failover.
        for _ in 0..<5 {
            do {
                return try await body(client, commands)
            } catch let error as RedisError where error.code == .server && (error.serverCode == .moved || error.serverCode == .ask) {
                guard let (_, node) = Self.redirection(error.message) else { throw error }
                if error.serverCode == .ask {
                    // A slot being migrated: this once, to the node importing it.
                    let replies = try await self.client(for: node).connection().send(pipelined: [RedisCommand("ASKING")] + commands)
                    return Array(replies.dropFirst())
                }
                // A slot moved (a failover, a resharding): most likely more than this one.
                markStale()
                client = self.client(for: node)
            }
        }
        throw RedisError(.unexpectedReply, "the cluster kept moving the slot of '\(key ?? "")'")
    }

    // MARK: - The slot map

    /// The client of the node that owns `key`'s slot (any node for nil), asking for the map first
    /// when there is none or it is stale.
    func client(forKey key: String?) async throws -> RedisClient {
        let slot = key.map(Self.slot(of:))
        if let client = currentClient(slot: slot) { return client }
        try await refreshMap()
        if let client = currentClient(slot: slot) { return client }
        var failure = RedisError(.connectionClosed, "no node of the cluster owns slot \(slot ?? 0) (a failover under way, or the cluster is not ready)")
        failure.commandNotSent = true
        throw failure
    }

    /// The configuration of a connection of its own to `key`'s node (a list or stream reader's).
    func nodeConfiguration(forKey key: String) async throws -> RedisConfiguration {
        try await client(forKey: key).configuration
    }

    /// Asks for the map again before the next command that needs it: a node could not be reached.
    func markStale() {
        state.withLock { state in
            if state.refresh == nil { state.stale = true }
        }
    }

    private func currentClient(slot: Int?) -> RedisClient? {
        state.withLock { state in
            guard !state.stale, !state.owners.isEmpty else { return nil }
            let node: RedisEndpoint? = slot.map { state.owners[$0] } ?? state.owners.lazy.compactMap { $0 }.first
            return node.map { client(for: $0, in: &state) }
        }
    }

    private func client(for node: RedisEndpoint) -> RedisClient {
        state.withLock { client(for: node, in: &$0) }
    }

    private func client(for node: RedisEndpoint, in state: inout State) -> RedisClient {
        if let client = state.clients[node] { return client }
        let client = RedisClient(configuration: configuration.direct(to: node.host, port: node.port))
        state.clients[node] = client
        return client
    }

    /// Asks the nodes for `CLUSTER SLOTS`, one at a time, until one answers; one refresh for every
    /// caller that waits.
    private func refreshMap() async throws {
        let task = try state.withLock { state -> Task<Void, any Error> in
            if state.closed { throw RedisError(.connectionClosed, "the Redis client is closed") }
            if let refresh = state.refresh { return refresh }
            // Every node met so far (the dead master of a failover among them, tried last by
            // chance of order only), then the seeds.
            let known = Set(state.owners.compactMap { $0 }).union(state.clients.keys)
            let seeds = configuration.cluster?.seeds ?? []
            let candidates = Array(known).sorted { $0.description < $1.description } + seeds.filter { !known.contains($0) }
            let refresh = Task { try await self.askForMap(candidates) }
            state.refresh = refresh
            return refresh
        }
        defer { state.withLock { state in if state.refresh == task { state.refresh = nil } } }
        try await task.value
    }

    private func askForMap(_ candidates: [RedisEndpoint]) async throws {
        var failures: [String] = []
        for node in candidates {
            do {
                let connection = try await RedisConnection.connect(configuration.direct(to: node.host, port: node.port))
                let reply: RESPValue
                do {
                    reply = try await connection.send(RedisCommand("CLUSTER", ["SLOTS"]))
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                let owners = Self.owners(from: reply, askedAt: node)
                guard owners.contains(where: { $0 != nil }) else {
                    failures.append("\(node) knows no slot owner")
                    continue
                }
                state.withLock { state in
                    state.owners = owners
                    state.stale = false
                }
                return
            } catch {
                failures.append("\(node): \(error)")
            }
        }
        var failure = RedisError(.connectionClosed, "no node of the cluster answered CLUSTER SLOTS: \(failures.joined(separator: "; "))")
        failure.commandNotSent = true
        throw failure
    }

    /// Each slot's master from a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], replicas…], …]`
    /// (an empty host is the node that answered).
    static func owners(from reply: RESPValue, askedAt node: RedisEndpoint) -> [RedisEndpoint?] {
        var owners = [RedisEndpoint?](repeating: nil, count: slotCount)
        for range in reply.elements ?? [] {
            guard let fields = range.elements, fields.count >= 3,
                let start = fields[0].integer, let end = fields[1].integer, start <= end, start >= 0, end < slotCount,
                let master = fields[2].elements, master.count >= 2,
                let port = master[1].integer
            else { continue }
            let host = master[0].string.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 } ?? node.host
            let owner = RedisEndpoint(host: host, port: Int(port))
            for slot in Int(start)...Int(end) { owners[slot] = owner }
        }
        return owners
    }

    // MARK: - Keys and slots

    /// The key a command of this module works on, by the command's layout; nil for commands
    /// without one (any node will do).
    static func key(of command: RedisCommand) -> String? {
        let arguments = command.arguments
        let index: Int
        switch command.name {
        case "XGROUP", "XINFO": index = 2
        case "PING", "CLIENT", "ASKING", "CLUSTER", "HELLO", "AUTH", "SELECT", "ROLE": return nil
        default: index = 1
        }
        guard arguments.indices.contains(index) else { return nil }
        switch arguments[index] {
        case .string(let key): return key
        case .bytes(let bytes): return String(buffer: bytes)
        case .integer(let number): return String(number)
        }
    }

    /// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its hash tag (the part between the
    /// first `{` and the next `}`, when not empty), modulo 16,384.
    static func slot(of key: String) -> Int {
        var bytes = Array(key.utf8)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            bytes = Array(bytes[(open + 1)..<close])
        }
        return Int(crc16(bytes) % UInt16(slotCount))
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster hashes keys.
    static func crc16(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }

    /// The slot and node of `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381`.
    static func redirection(_ text: String) -> (slot: Int, node: RedisEndpoint)? {
        let words = text.split(separator: " ")
        guard words.count >= 3, let slot = Int(words[1]), (0..<slotCount).contains(slot),
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...])
        else { return nil }
        var host = words[2][..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (slot, RedisEndpoint(host: String(host), port: port))
    }

    // MARK: - State

    /// Connected while any node's pool is; before the first map, what the map's asking said.
    var connectionState: ConnectionState {
        let clients = state.withLock { Array($0.clients.values) }
        let states = clients.map(\.connectionState)
        if let connected = states.first(where: { $0.status == .connected }) { return connected }
        return states.first ?? .unknown
    }

    func close() async {
        let (clients, refresh) = state.withLock { state in
            state.closed = true
            return (Array(state.clients.values), state.refresh)
        }
        refresh?.cancel()
        for client in clients { await client.close() }
    }
}
