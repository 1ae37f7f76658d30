import Courier
import Foundation
import Logging
import NIOCore
import Synchronization

/// A subscription that reads with a blocking command (BLPOP, BLMPOP, XREAD, XREADGROUP) on a
/// connection of its own, asking for more only when the subscriber can take it.
///
/// Stopping does not cut the connection (a reply in flight would be lost): it asks Redis to
/// `CLIENT UNBLOCK` the read, which then returns empty. An unblock can arrive just before its
/// read does, so reads also block for at most ``blockLimit`` and then check for a stop. A dropped connection is opened again with
/// backoff; a stream group then re-reads this consumer's pending entries first.
final class RedisBlockingSubscription: TransportSubscription {
    fileprivate struct State {
        var connection: RedisConnection?
        var clientID: Int64?
        var stopped = false
        /// Whether a read is waiting on the connection (and needs `CLIENT UNBLOCK` to end).
        var reading = false
        /// For streams without a group: the last entry id seen.
        var lastID = "$"
        /// For stream groups: read this consumer's pending entries before new ones.
        var readPending = true
        /// Entries rejected here: left pending, as FastStream does, but not read again.
        var rejected: Set<String> = []
        /// For lists: values popped ahead of the handler.
        var prefetched = CircularBuffer<ByteBuffer>()
    }

    /// The longest one blocking read waits before the subscription checks whether it stopped.
    static let blockLimit = 1

    private let source: RedisSource
    private let maxMessages: Int
    private let isBatch: Bool
    private let client: RedisClient
    private let logger: Logger
    fileprivate let state = Mutex(State())

    init(source: RedisSource, batch: BatchOptions?, client: RedisClient, logger: Logger) {
        self.source = source
        self.maxMessages = batch?.maxMessages ?? 1
        self.isBatch = batch != nil
        self.client = client
        self.logger = logger
    }

    /// Connects and, for a stream group, creates the group; called before the first `next()` so
    /// that messages published once the broker runs are not missed.
    func start() async throws {
        _ = try await connection()
        if case .stream(let options) = source.kind {
            if let group = options.group {
                do {
                    _ = try await client.send(RedisCommand("XGROUP", ["CREATE", .string(source.name), .string(group), "$", "MKSTREAM"]))
                } catch let error as RedisError where error.serverCode == .busyGroup {
                    // The group exists: join it.
                }
            } else {
                // Read from the stream's current end, fixed now rather than at the first read; a
                // stream that does not exist yet is read from its beginning.
                let reply = try? await client.send(RedisCommand("XINFO", ["STREAM", .string(source.name)])).elements
                var lastID = "0-0"
                if let reply, let index = stride(from: 0, to: reply.count - 1, by: 2).first(where: { reply[$0].string == "last-generated-id" }),
                    let id = reply[index + 1].string
                {
                    lastID = id
                }
                state.withLock { $0.lastID = lastID }
            }
        }
    }

    func next() async throws -> InboundDelivery? {
        try await withTaskCancellationHandler {
            try await readNext()
        } onCancel: {
            // A blocking read ends only with its connection.
            state.withLock { $0.connection }?.channel.close(promise: nil)
        }
    }

    private func readNext() async throws -> InboundDelivery? {
        var attempts = client.configuration.reconnect.attempts()
        while true {
            if let connection = state.withLock({ $0.stopped ? $0.connection.take() : nil }) {
                await connection.close()
            }
            if state.withLock({ $0.stopped }) {
                await returnPrefetched()
                return nil
            }
            try Task.checkCancellation()
            do {
                let connection = try await connection()
                state.withLock { $0.reading = true }
                defer { state.withLock { $0.reading = false } }
                if let delivery = try await read(on: connection) { return delivery }
            } catch let error as RedisError
                where error.code == .connectionClosed || error.code == .timeout || error.code == .protocolViolation
                || error.serverCode == .readOnly || error.serverCode == .moved || error.serverCode == .clusterDown
            {
                if state.withLock({ $0.stopped }) { return nil }
                // A demoted master (behind Sentinel) refuses the read, or the key's slot has
                // another master (a cluster's failover): a new connection asks where it is now.
                if error.code == .server, let connection = state.withLock({ $0.connection.take() }) { await connection.close() }
                client.nodeLost()
                guard let delay = attempts.nextDelay() else {
                    logger.error("Redis connection of a subscriber lost; the reconnect policy gave up", metadata: ["error": "\(error)"])
                    throw error
                }
                logger.warning("Redis connection of a subscriber lost; reconnecting", metadata: ["error": "\(error)", "courier.retry_in": "\(delay)"])
                state.withLock { state in
                    state.connection = nil
                    state.readPending = true
                }
                try await Task.sleep(for: delay)
            } catch let error as RedisError where error.serverCode == .loading {
                // A restarted server reading its data back (`LOADING`): it refuses reads for a
                // moment. The same connection reads again after the reconnect policy's delay.
                if state.withLock({ $0.stopped }) { return nil }
                guard let delay = attempts.nextDelay() else { throw error }
                logger.debug("Redis is loading its data; reading again", metadata: ["courier.retry_in": "\(delay)"])
                try await Task.sleep(for: delay)
            } catch let error as RedisError where error.serverCode == .unblocked || error.serverCode == .noGroup {
                if state.withLock({ $0.stopped }) { return nil }
                if error.serverCode == .noGroup {
                    // The stream or its group was deleted under us: create them again.
                    try await start()
                }
            }
        }
    }

    func stop() async {
        let (clientID, idleConnection) = state.withLock { state -> (Int64?, RedisConnection?) in
            state.stopped = true
            // A waiting read is unblocked and its `next()` closes the connection; an idle one
            // can go now.
            return state.reading ? (state.clientID, nil) : (nil, state.connection.take())
        }
        if let clientID {
            // In a cluster, client ids are a node's own: on the node of the reader's key.
            _ = try? await client.send(RedisCommand("CLIENT", ["UNBLOCK", .integer(Int(clientID))]), routedBy: source.name)
        }
        await idleConnection?.close()
        await returnPrefetched()
    }

    private func connection() async throws -> RedisConnection {
        if let connection = state.withLock({ $0.connection }), connection.isActive { return connection }
        // In a cluster, on the node that owns the key.
        let connection = try await RedisConnection.connect(try await client.configuration(forReading: source.name))
        let id: Int64?
        do {
            id = try await connection.send(RedisCommand("CLIENT", ["ID"])).integer
        } catch {
            // Refused (a server still loading its data, say): this connection is nobody's.
            await connection.close()
            throw error
        }
        let stopped = state.withLock { state -> Bool in
            state.connection = connection
            state.clientID = id
            return state.stopped
        }
        if stopped {
            await connection.close()
            throw RedisError(.connectionClosed, "the subscription stopped")
        }
        return connection
    }

    // MARK: - Reading

    private func read(on connection: RedisConnection) async throws -> InboundDelivery? {
        switch source.kind {
        case .list:
            return try await readList(on: connection)
        case .stream(let options):
            if let group = options.group {
                return try await readGroup(group, consumer: options.consumer ?? group, claimIdleAfter: options.claimIdleAfter, on: connection)
            }
            return try await readStream(on: connection)
        case .channel, .pattern:
            return nil
        }
    }

    private func readList(on connection: RedisConnection) async throws -> InboundDelivery? {
        if !isBatch, source.prefetch > 1 {
            return try await readListPrefetching(on: connection)
        }
        let reply: RESPValue
        if isBatch {
            reply = try await connection.send(
                RedisCommand("BLMPOP", [.integer(Self.blockLimit), "1", .string(source.name), "LEFT", "COUNT", .integer(maxMessages)]),
                timeout: .zero
            )
        } else {
            reply = try await connection.send(RedisCommand("BLPOP", [.string(source.name), .integer(Self.blockLimit)]), timeout: .zero)
        }
        // BLPOP: [list, value]; BLMPOP: [list, [values…]]; an unblocked read: null.
        guard let elements = reply.elements, elements.count == 2 else { return nil }
        let values = isBatch ? (elements[1].elements ?? []) : [elements[1]]
        let messages = values.compactMap(\.bytes).map { message(from: $0, entryID: nil) }
        guard !messages.isEmpty else { return nil }
        return InboundDelivery(messages: messages, settlement: .none)
    }

    /// One message per delivery, from a local buffer filled by `BLMPOP … COUNT prefetch`.
    private func readListPrefetching(on connection: RedisConnection) async throws -> InboundDelivery? {
        if let value = state.withLock({ $0.prefetched.popFirst() }) {
            return InboundDelivery(messages: [message(from: value, entryID: nil)], settlement: .none)
        }
        let reply = try await connection.send(
            RedisCommand("BLMPOP", [.integer(Self.blockLimit), "1", .string(source.name), "LEFT", "COUNT", .integer(source.prefetch)]),
            timeout: .zero
        )
        guard let elements = reply.elements, elements.count == 2, let values = elements[1].elements?.compactMap(\.bytes), let first = values.first else {
            return nil
        }
        state.withLock { $0.prefetched.append(contentsOf: values.dropFirst()) }
        return InboundDelivery(messages: [message(from: first, entryID: nil)], settlement: .none)
    }

    /// Puts values popped ahead but never handled back at the head of the list, in order.
    private func returnPrefetched() async {
        let values = state.withLock { state -> [ByteBuffer] in
            defer { state.prefetched.removeAll() }
            return Array(state.prefetched)
        }
        guard !values.isEmpty else { return }
        do {
            _ = try await client.send(RedisCommand("LPUSH", [.string(source.name)] + values.reversed().map { .bytes($0) }))
        } catch {
            logger.error(
                "could not return prefetched messages to the list; they are lost",
                metadata: ["courier.destination": "\(source.name)", "courier.messages": "\(values.count)", "error": "\(error)"]
            )
        }
    }

    private func readStream(on connection: RedisConnection) async throws -> InboundDelivery? {
        let lastID = state.withLock { $0.lastID }
        let reply = try await connection.send(
            RedisCommand("XREAD", ["COUNT", .integer(maxMessages), "BLOCK", .integer(Self.blockLimit * 1000), "STREAMS", .string(source.name), .string(lastID)]),
            timeout: .zero
        )
        let entries = Self.streamEntries(reply)
        guard let last = entries.last else { return nil }
        state.withLock { $0.lastID = last.id }
        return InboundDelivery(messages: entries.map { message(from: $0.payload, entryID: $0.id) }, settlement: .none)
    }

    private func readGroup(_ group: String, consumer: String, claimIdleAfter: Duration?, on connection: RedisConnection) async throws -> InboundDelivery? {
        let name = source.name
        var entries: [StreamEntry] = []
        if state.withLock({ $0.readPending }) {
            // Entries delivered to this consumer before (a crash, a lost connection, a nack).
            let reply = try await connection.send(
                RedisCommand("XREADGROUP", ["GROUP", .string(group), .string(consumer), "COUNT", .integer(maxMessages + state.withLock { $0.rejected.count }), "STREAMS", .string(name), "0"])
            )
            let rejected = state.withLock { $0.rejected }
            entries = Self.streamEntries(reply).filter { !rejected.contains($0.id) }
            if entries.isEmpty { state.withLock { $0.readPending = false } }
        }
        if entries.isEmpty, let idle = claimIdleAfter {
            let milliseconds = Int(idle.wholeMilliseconds)
            let reply = try await connection.send(
                RedisCommand("XAUTOCLAIM", [.string(name), .string(group), .string(consumer), .integer(milliseconds), "0-0", "COUNT", .integer(maxMessages)])
            )
            if let claimed = reply.elements, claimed.count >= 2 {
                entries = Self.entries(claimed[1])
            }
        }
        // Entries read again (after a nack, a crash or a claim) were delivered before: their
        // delivery counts come from the group's pending entries list.
        var deliveryCounts: [String: Int] = [:]
        if let first = entries.first, let last = entries.last {
            let pending = try await connection.send(
                RedisCommand("XPENDING", [.string(name), .string(group), .string(first.id), .string(last.id), .integer(entries.count)])
            )
            for entry in pending.elements ?? [] {
                guard let fields = entry.elements, fields.count >= 4, let id = fields[0].string, let count = fields[3].integer else { continue }
                deliveryCounts[id] = Int(count)
            }
        }
        if entries.isEmpty {
            // With claiming on, wake up once per idle period to claim what others left behind.
            let block = min(
                Self.blockLimit * 1000,
                claimIdleAfter.map { max(1, Int($0.wholeMilliseconds)) } ?? .max
            )
            let reply = try await connection.send(
                RedisCommand("XREADGROUP", ["GROUP", .string(group), .string(consumer), "COUNT", .integer(maxMessages), "BLOCK", .integer(block), "STREAMS", .string(name), ">"]),
                timeout: .zero
            )
            entries = Self.streamEntries(reply)
        }
        guard !entries.isEmpty else { return nil }
        let ids = entries.map(\.id)
        let client = self.client
        let settlement = Settlement { [weak self] request in
            if request.outcome == .ack {
                _ = try await client.send(RedisCommand("XACK", [.string(name), .string(group)] + ids.map { .string($0) }))
            } else if request.redelivers {
                // The entries stay pending; this consumer reads them again next.
                self?.state.withLock { $0.readPending = true }
            } else {
                // Left pending, as FastStream does (visible in XPENDING, claimable), never re-read here.
                self?.state.withLock { $0.rejected.formUnion(ids) }
            }
        }
        let messages = entries.map { entry in
            var message = message(from: entry.payload, entryID: entry.id)
            message.deliveryCount = max(1, deliveryCounts[entry.id] ?? 1)
            return message
        }
        return InboundDelivery(messages: messages, settlement: settlement)
    }

    private func message(from payload: ByteBuffer, entryID: String?) -> IncomingMessage {
        RedisIncoming.message(from: payload, destination: source.name, info: RedisMessageInfo(entryID: entryID, pattern: nil, path: [:]), logger: logger)
    }

    // MARK: - Stream replies

    struct StreamEntry {
        var id: String
        var payload: ByteBuffer
    }

    /// The entries of an XREAD/XREADGROUP reply for one stream: RESP3 `{stream: entries}` or
    /// RESP2 `[[stream, entries]]`; null when nothing arrived.
    static func streamEntries(_ reply: RESPValue) -> [StreamEntry] {
        switch reply {
        case .map(let pairs) where pairs.count >= 2:
            return entries(pairs[1])
        case .array(let streams):
            return streams.first.flatMap(\.elements).map { $0.count >= 2 ? entries($0[1]) : [] } ?? []
        default:
            return []
        }
    }

    /// `[[id, [field, value, …]], …]`; an entry deleted while pending has a null field list.
    static func entries(_ value: RESPValue) -> [StreamEntry] {
        (value.elements ?? []).compactMap { entry in
            guard let parts = entry.elements, parts.count >= 2, let id = parts[0].string else { return nil }
            guard let fields = parts[1].elements else { return nil }
            return StreamEntry(id: id, payload: payload(fields))
        }
    }

    /// The `__data__` field FastStream writes; any other entry becomes the JSON of its fields.
    static func payload(_ fields: [RESPValue]) -> ByteBuffer {
        var object: [String: String] = [:]
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            guard let name = fields[index].string else { continue }
            if name == "__data__", let data = fields[index + 1].bytes { return data }
            object[name] = fields[index + 1].string ?? ""
        }
        let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return ByteBuffer(bytes: json)
    }
}

extension RedisBlockingSubscription {
    /// Closes the subscription's connection, whatever it is doing; the transport's last word.
    func closeConnection() async {
        let connection = state.withLock { state -> RedisConnection? in
            state.stopped = true
            return state.connection.take()
        }
        await connection?.close()
    }
}
