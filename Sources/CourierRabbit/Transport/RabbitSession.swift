import Courier
import Logging
import Synchronization

/// The transport's connection to RabbitMQ across reconnects: a ``SharedConnection`` (the core's
/// "connect once, many waiters", its lifecycle one explicit phase) of a connection and its
/// publishing channel, made on first use and made again once it is lost: with the reconnect
/// policy's attempts, then the recovery of the topology and the consumers.
///
/// A publish waits for a connection being made until its ``RabbitConfiguration/publishTimeout``
/// (then `.connectionUnavailable`, naming the outage) and no longer than its task is not
/// cancelled; the recovery goes on behind it. ``close()`` ends the session's current run (its
/// ``epoch``): whoever keeps the connection for that run stops; a later use connects afresh.
final class RabbitSession: Sendable {
    /// A connection and its publishing channel (publisher confirms on).
    struct Live: Sendable {
        let connection: AMQPConnection
        let publisher: AMQPChannel
        /// 0 for the first connection, then one more per reconnect.
        let generation: Int
        /// The node it is connected to.
        let endpoint: RabbitEndpoint
    }

    private let shared: SharedConnection<Live>
    private let configuration: RabbitConfiguration

    init(
        configuration: RabbitConfiguration,
        logger: Logger,
        recover: @escaping @Sendable (Live) async throws -> Void,
        publisherOpened: @escaping @Sendable (Live) async throws -> Void
    ) {
        self.configuration = configuration
        let cursor = NodeCursor()
        shared = SharedConnection(
            isOpen: { $0.connection.isOpen },
            lost: { lost in
                let reason = lost.connection.closeReason
                guard configuration.reconnect != nil else {
                    throw reason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (reconnecting is off)")
                }
                return reason ?? RabbitError(.connectionClosed, "socket closed")
            },
            connect: { generation, noteAttemptError in
                try await Self.connectOrRecover(
                    generation: generation,
                    configuration: configuration,
                    cursor: cursor,
                    logger: logger,
                    recover: { live in
                        // What a new connection needs before anyone may use it: the topology
                        // declared again, the consumers resumed; then the publishing channel's
                        // own (the direct reply-to consumer lives on it).
                        try await recover(live)
                        try await publisherOpened(live)
                    },
                    noteAttemptError: noteAttemptError
                )
            },
            discard: { await $0.connection.close() },
            closedError: { RabbitError(.connectionClosed, "the transport is closed") }
        )
        self.publisherOpened = publisherOpened
    }

    /// What a new publishing channel needs: runs when a closed publishing channel was replaced.
    private let publisherOpened: @Sendable (Live) async throws -> Void

    /// The live connection: the current one while it is open, otherwise the one being made
    /// (the first connect fails at once; a reconnect tries as ``RabbitConfiguration/reconnect``
    /// says).
    ///
    /// - Parameter deadline: how long to wait for a connection being made; nil waits for the
    ///   attempt to end.
    /// - Throws: the attempt's error; ``RabbitError`` `.connectionUnavailable`, naming the outage,
    ///   once `deadline` passes; `CancellationError` at once when the calling task is cancelled
    ///   (the attempt goes on for whoever else needs it).
    func live(deadline: ContinuousClock.Instant? = nil) async throws -> Live {
        if configuration.reconnect == nil, let lost = lostConnection() {
            // The socket is gone, but its close may not have been handled yet (the reason, a
            // server's close or a protocol error, is recorded then): wait for that, then say why.
            try? await lost.connection.closeFuture.get()
            throw lost.connection.closeReason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (reconnecting is off)")
        }
        if let live = try await shared.connection(deadline: deadline) { return live }
        let server = configuration.endpoints.map(\.description).joined(separator: ", ")
        guard let outage = shared.outage else {
            throw RabbitError(.connectionUnavailable, "no connection to RabbitMQ at \(server) within the publish timeout (\(configuration.publishTimeout)): still connecting")
        }
        throw RabbitError(
            .connectionUnavailable,
            "no connection to RabbitMQ at \(server) within the publish timeout (\(configuration.publishTimeout)): \(outage.summary)",
            underlying: outage.lastError
        )
    }

    /// The connection of the current phase if it is no longer open.
    private func lostConnection() -> Live? {
        shared.withPhase { phase, _ in
            if case .live(let live, _) = phase, !live.connection.isOpen { return live }
            return nil
        }
    }

    /// The live connection if it is open now; never waits for a reconnect (a ping must not
    /// wait for a recovery that may take minutes). Before the first use it connects, which
    /// fails at once when the server is down.
    func liveWithoutWaitingForRecovery() async throws -> Live {
        let current = try shared.withPhase { phase, epoch throws -> Live? in
            switch phase {
            case .live(let live, _) where live.connection.isOpen:
                return live
            case .live(let lost, _):
                throw RabbitError(.connectionClosed, "the connection to RabbitMQ was lost: \(lost.connection.closeReason.map { "\($0)" } ?? "socket closed")")
            case .connecting(_, let generation) where generation > 0:
                throw RabbitError(.connectionClosed, "reconnecting to RabbitMQ")
            case .idle where epoch > 0, .closed:
                throw RabbitError(.connectionClosed, "the transport is closed")
            case .connecting, .idle:
                return nil
            }
        }
        if let current { return current }
        return try await live()
    }

    /// Where the connection is: idle before the first use, connecting during it, connected
    /// while open, reconnecting (with the last error) after it was lost, closed after
    /// ``close()``.
    var connectionState: ConnectionState {
        let outage = shared.outage.map { outage in outage.lastError.map { "\($0)" } ?? "socket closed" }
        return shared.withPhase { phase, epoch in
            switch phase {
            case .live(let live, _) where live.connection.isOpen:
                return .connected
            case .live(let lost, _):
                return .reconnecting(reason: lost.connection.closeReason.map { "\($0)" } ?? "socket closed")
            case .connecting(_, let generation):
                return generation > 0 ? .reconnecting(reason: outage) : .connecting
            case .idle:
                return epoch > 0 ? .closed() : .idle
            case .closed:
                return .closed()
            }
        }
    }

    /// The node of the open connection, if there is one.
    var connectedNode: RabbitEndpoint? {
        guard let live = shared.current, live.connection.isOpen else { return nil }
        return live.endpoint
    }

    /// The current run: ``close()`` starts the next.
    var epoch: Int { shared.epoch }

    /// Replaces a publishing channel the server closed (a publish to a missing exchange closes
    /// it with 404) by a new one on the same connection.
    func replacePublisher(of broken: Live) async throws {
        let channel = try await broken.connection.openChannel()
        try await channel.selectConfirms()
        let replacement = Live(connection: broken.connection, publisher: channel, generation: broken.generation, endpoint: broken.endpoint)
        let replaced = shared.withPhase { phase, _ -> Bool in
            guard case .live(let live, let generation) = phase, live.publisher.id == broken.publisher.id, live.connection === broken.connection else { return false }
            phase = .live(replacement, generation: generation)
            return true
        }
        if replaced {
            try await publisherOpened(replacement)
        } else {
            try? await channel.close()
        }
    }

    /// Ends the current run: the live connection is closed cleanly (an attempt under way is
    /// cancelled, and closes what it made), and whoever keeps the connection for this run stops.
    func close() async {
        await shared.close()
    }

    /// A connection for generation `generation`: the first tries each endpoint once, in order;
    /// a later one starts with the node after the one it lost and goes round the endpoints, one
    /// round per attempt of the reconnect policy, each after the policy's delay (with several
    /// nodes the first at once), recovering the topology and consumers on the connection made.
    private static func connectOrRecover(
        generation: Int,
        configuration: RabbitConfiguration,
        cursor: NodeCursor,
        logger: Logger,
        recover: @Sendable (Live) async throws -> Void,
        noteAttemptError: @Sendable (any Error) -> Void
    ) async throws -> Live {
        guard generation > 0, let policy = configuration.reconnect else {
            return try await connect(configuration, from: 0, generation: generation, cursor: cursor)
        }
        var attempts = policy.attempts()
        var lastError: any Error = RabbitError(.connectionClosed, "the connection to RabbitMQ was lost")
        // With several nodes the first attempt goes at once: another node is likely up.
        var immediately = configuration.endpoints.count > 1
        while let delay = attempts.nextDelay() {
            if !immediately { try await Task.sleep(for: delay) }
            immediately = false
            do {
                let live = try await connect(configuration, from: cursor.next, generation: generation, cursor: cursor)
                do {
                    try await recover(live)
                } catch {
                    await live.connection.close()
                    throw error
                }
                logger.info(
                    "RabbitMQ connection recovered",
                    metadata: ["courier.rabbitmq.attempts": "\(attempts.count)", "courier.rabbitmq.node": "\(live.endpoint)"]
                )
                return live
            } catch {
                noteAttemptError(error)
                if error is CancellationError || Task.isCancelled { throw error }
                lastError = error
                logger.warning("RabbitMQ reconnect attempt \(attempts.count) failed", metadata: ["error": "\(error)"])
            }
        }
        logger.error("RabbitMQ: giving up reconnecting after \(attempts.count) attempts", metadata: ["error": "\(lastError)"])
        throw lastError
    }

    /// Connects to the first endpoint that answers, trying them in order from the one at
    /// `start` (round the list), and opens the publishing channel.
    private static func connect(_ configuration: RabbitConfiguration, from start: Int, generation: Int, cursor: NodeCursor) async throws -> Live {
        let endpoints = configuration.endpoints
        let first = ((start % endpoints.count) + endpoints.count) % endpoints.count
        let order = Array(endpoints[first...] + endpoints[..<first])
        let (connection, index) = try await AMQPConnection.connect(configuration, trying: order)
        let endpoint = (first + index) % endpoints.count
        cursor.connected(to: endpoint)
        do {
            let publisher = try await connection.openChannel()
            try await publisher.selectConfirms()
            return Live(connection: connection, publisher: publisher, generation: generation, endpoint: endpoints[endpoint])
        } catch {
            await connection.close()
            throw error
        }
    }
}

/// Which of the configuration's endpoints the last connection went to: a reconnect starts with
/// the node after it, so that a client fails over from a node that died.
private final class NodeCursor: Sendable {
    private let last = Atomic<Int>(-1)

    /// The endpoint to try first.
    var next: Int { last.load(ordering: .relaxed) + 1 }

    func connected(to index: Int) {
        last.store(index, ordering: .relaxed)
    }
}
