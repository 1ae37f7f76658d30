import Courier
import Logging
import Synchronization

/// The transport's connection to RabbitMQ across reconnects: at most one connection at a time,
/// made on first use, and made again (with backoff, then recovery) once it is lost.
///
/// Its lifecycle is an explicit `State`: `disconnected` until first use (or after a failed
/// attempt, or a close), `connecting` while an attempt (or a recovery: many attempts) is under
/// way — everyone who needs the connection waits for that one task —, `live` with a connection.
/// A live connection found dead starts the next generation's recovery; only one can start.
/// ``close()`` ends the session's current run (its ``epoch``): whoever keeps the connection for
/// that run stops; a later use connects afresh.
final class RabbitSession: Sendable {
    /// A connection and its publishing channel (publisher confirms on).
    struct Live: Sendable {
        let connection: AMQPConnection
        let publisher: AMQPChannel
        /// 0 for the first connection, then one more per reconnect.
        let generation: Int
    }

    private enum Phase {
        /// No connection; the next use makes generation `next` (0: the first connection).
        case disconnected(next: Int)
        case connecting(Task<Live, any Error>, generation: Int)
        case live(Live)
    }

    private struct State {
        var phase: Phase = .disconnected(next: 0)
        var epoch = 0
        /// Why the last live connection was lost (for the connection state while reconnecting).
        var lastLoss: String?
    }

    private enum Next {
        case ready(Live)
        case wait(Task<Live, any Error>)
    }

    private let state = Mutex(State())
    private let configuration: RabbitConfiguration
    private let logger: Logger
    /// What a new connection needs before anyone may use it: the topology declared again, the
    /// consumers resumed. Runs for every generation after the first.
    private let recover: @Sendable (Live) async throws -> Void
    /// What a new publishing channel needs (the direct reply-to consumer lives on it): runs
    /// after `recover`, and when a closed publishing channel was replaced.
    private let publisherOpened: @Sendable (Live) async throws -> Void

    init(
        configuration: RabbitConfiguration,
        logger: Logger,
        recover: @escaping @Sendable (Live) async throws -> Void,
        publisherOpened: @escaping @Sendable (Live) async throws -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.recover = recover
        self.publisherOpened = publisherOpened
    }

    /// The live connection: the current one while it is open, otherwise the one being made
    /// (the first connect fails at once; a reconnect tries as ``RabbitReconnect`` says).
    func live() async throws -> Live {
        let next = try state.withLock { state throws -> Next in
            switch state.phase {
            case .disconnected(let generation):
                let task = makeConnectTask(generation: generation)
                state.phase = .connecting(task, generation: generation)
                return .wait(task)
            case .connecting(let task, _):
                return .wait(task)
            case .live(let live) where live.connection.isOpen:
                return .ready(live)
            case .live(let lost):
                guard configuration.reconnect != nil else {
                    throw lost.connection.closeReason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (reconnecting is off)")
                }
                state.lastLoss = lost.connection.closeReason.map { "\($0)" } ?? "socket closed"
                let task = makeConnectTask(generation: lost.generation + 1)
                state.phase = .connecting(task, generation: lost.generation + 1)
                return .wait(task)
            }
        }
        switch next {
        case .ready(let live):
            return live
        case .wait(let task):
            do {
                let live = try await task.value
                state.withLock { if case .connecting(let current, _) = $0.phase, current == task { $0.phase = .live(live) } }
                return live
            } catch {
                state.withLock { state in
                    // The next use tries the same generation again (a recovery still recovers).
                    if case .connecting(let current, let generation) = state.phase, current == task { state.phase = .disconnected(next: generation) }
                }
                throw error
            }
        }
    }

    /// The live connection if it is open now; never waits for a reconnect (a ping must not
    /// wait for a recovery that may take minutes). Before the first use it connects, which
    /// fails at once when the server is down.
    func liveWithoutWaitingForRecovery() async throws -> Live {
        let current = try state.withLock { state throws -> Live? in
            switch state.phase {
            case .live(let live) where live.connection.isOpen:
                return live
            case .live(let lost):
                throw RabbitError(.connectionClosed, "the connection to RabbitMQ was lost: \(lost.connection.closeReason.map { "\($0)" } ?? "socket closed")")
            case .connecting(_, let generation) where generation > 0:
                throw RabbitError(.connectionClosed, "reconnecting to RabbitMQ")
            case .disconnected where state.epoch > 0:
                throw RabbitError(.connectionClosed, "the transport is closed")
            case .connecting, .disconnected:
                return nil
            }
        }
        if let current { return current }
        return try await live()
    }

    /// Where the connection is: idle before the first use, connecting during it, connected
    /// while open, reconnecting (with the close reason) after it was lost, closed after
    /// ``close()``.
    var connectionState: ConnectionState {
        state.withLock { state in
            switch state.phase {
            case .live(let live) where live.connection.isOpen:
                return .connected
            case .live(let lost):
                return .reconnecting(reason: lost.connection.closeReason.map { "\($0)" } ?? "socket closed")
            case .connecting(_, let generation):
                return generation > 0 ? .reconnecting(reason: state.lastLoss) : .connecting
            case .disconnected:
                return state.epoch > 0 ? .closed() : .idle
            }
        }
    }

    /// The current run: ``close()`` starts the next.
    var epoch: Int {
        state.withLock { $0.epoch }
    }

    /// Replaces a publishing channel the server closed (a publish to a missing exchange closes
    /// it with 404) by a new one on the same connection.
    func replacePublisher(of broken: Live) async throws {
        let channel = try await broken.connection.openChannel()
        try await channel.selectConfirms()
        let replacement = Live(connection: broken.connection, publisher: channel, generation: broken.generation)
        let replaced = state.withLock { state -> Bool in
            guard case .live(let live) = state.phase, live.publisher.id == broken.publisher.id, live.connection === broken.connection else { return false }
            state.phase = .live(replacement)
            return true
        }
        if replaced {
            try await publisherOpened(replacement)
        } else {
            try? await channel.close()
        }
    }

    /// Ends the current run: the live connection is closed cleanly (an attempt under way is
    /// cancelled), and whoever keeps the connection for this run stops.
    func close() async {
        let previous = state.withLock { state -> Phase in
            defer {
                state.phase = .disconnected(next: 0)
                state.epoch += 1
            }
            return state.phase
        }
        switch previous {
        case .live(let live):
            await live.connection.close()
        case .connecting(let task, _):
            task.cancel()
            if let live = try? await task.value { await live.connection.close() }
        case .disconnected:
            break
        }
    }

    private func makeConnectTask(generation: Int) -> Task<Live, any Error> {
        let configuration = self.configuration
        let logger = self.logger
        let recover = self.recover
        let publisherOpened = self.publisherOpened
        return Task {
            guard generation > 0, let policy = configuration.reconnect else {
                return try await Self.connect(configuration, generation: generation)
            }
            var attempt = 0
            while true {
                try await Task.sleep(for: policy.delay(beforeAttempt: attempt))
                attempt += 1
                do {
                    let live = try await Self.connect(configuration, generation: generation)
                    do {
                        try await recover(live)
                        try await publisherOpened(live)
                    } catch {
                        await live.connection.close()
                        throw error
                    }
                    logger.info("RabbitMQ connection recovered", metadata: ["courier.rabbitmq.attempts": "\(attempt)"])
                    return live
                } catch {
                    if let maximum = policy.maximumAttempts, attempt >= maximum {
                        logger.error("RabbitMQ: giving up reconnecting after \(attempt) attempts", metadata: ["error": "\(error)"])
                        throw error
                    }
                    logger.warning("RabbitMQ reconnect attempt \(attempt) failed; trying again", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private static func connect(_ configuration: RabbitConfiguration, generation: Int) async throws -> Live {
        let connection = try await AMQPConnection.connect(configuration)
        do {
            let publisher = try await connection.openChannel()
            try await publisher.selectConfirms()
            return Live(connection: connection, publisher: publisher, generation: generation)
        } catch {
            await connection.close()
            throw error
        }
    }
}
