import Courier
import Foundation
import Logging
import Synchronization

/// The transport's connection to RabbitMQ across reconnects: at most one connection at a time,
/// made on first use, and made again (with backoff, then recovery) once it is lost.
///
/// Its lifecycle is an explicit `Phase`: `disconnected` until first use (or after a failed
/// attempt, or a close), `connecting` while an attempt (or a recovery: many attempts) is under
/// way — everyone who needs the connection waits for that one attempt's ``PendingResult``, each
/// until a deadline of their own (a publish's ``RabbitConfiguration/publishTimeout``) and no
/// longer than their task is not cancelled —, `live` with a connection. The attempt's task moves
/// the phase on when it ends, so the connection an attempt produced is the one its waiters get
/// (dead again or not: the next use sees that and starts the next recovery). A live connection
/// found dead starts the next generation's recovery; only one can start. ``close()`` ends the
/// session's current run (its ``epoch``): whoever keeps the connection for that run stops; a
/// later use connects afresh.
final class RabbitSession: Sendable {
    /// A connection and its publishing channel (publisher confirms on).
    struct Live: Sendable {
        let connection: AMQPConnection
        let publisher: AMQPChannel
        /// 0 for the first connection, then one more per reconnect.
        let generation: Int
    }

    /// One connect, or one recovery (as many attempts as the policy allows), and its result.
    private struct Attempt {
        let task: Task<Void, Never>
        let result: PendingResult<Live>
    }

    private enum Phase {
        /// No connection; the next use makes generation `next` (0: the first connection).
        case disconnected(next: Int)
        case connecting(Attempt, generation: Int)
        case live(Live)
    }

    private struct State {
        var phase: Phase = .disconnected(next: 0)
        var epoch = 0
        /// Why the last live connection was lost (for the connection state while reconnecting).
        var lastLoss: String?
        /// Since when there is no connection, and the last error losing or making it again: for
        /// the error of a publish that waited in vain. Nil while connected.
        var outage: ConnectionGate.Outage?
    }

    private enum Next {
        case ready(Live)
        case wait(PendingResult<Live>)
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
    ///
    /// - Parameter deadline: how long to wait for a connection being made; nil waits for the
    ///   attempt to end.
    /// - Throws: the attempt's error; ``RabbitError`` `.connectionUnavailable`, naming the outage,
    ///   once `deadline` passes; `CancellationError` at once when the calling task is cancelled
    ///   (the attempt goes on for whoever else needs it).
    func live(deadline: ContinuousClock.Instant? = nil) async throws -> Live {
        let next = try state.withLock { state throws -> Next in
            switch state.phase {
            case .disconnected(let generation):
                return .wait(startAttempt(generation: generation, in: &state))
            case .connecting(let attempt, _):
                return .wait(attempt.result)
            case .live(let live) where live.connection.isOpen:
                return .ready(live)
            case .live(let lost):
                let reason = lost.connection.closeReason
                guard configuration.reconnect != nil else {
                    throw reason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (reconnecting is off)")
                }
                state.lastLoss = reason.map { "\($0)" } ?? "socket closed"
                state.outage = ConnectionGate.Outage(since: .now, startedAt: Date(), lastError: reason)
                return .wait(startAttempt(generation: lost.generation + 1, in: &state))
            }
        }
        switch next {
        case .ready(let live):
            return live
        case .wait(let result):
            if let live = try await result.value(until: deadline) { return live }
            throw unavailable()
        }
    }

    /// The error of a wait for the connection that ran out of time.
    private func unavailable() -> RabbitError {
        let outage = state.withLock { $0.outage }
        let server = "\(configuration.host):\(configuration.port)"
        guard let outage else {
            return RabbitError(.connectionUnavailable, "no connection to RabbitMQ at \(server) within the publish timeout (\(configuration.publishTimeout)): still connecting")
        }
        return RabbitError(
            .connectionUnavailable,
            "no connection to RabbitMQ at \(server) within the publish timeout (\(configuration.publishTimeout)): \(outage.summary)",
            underlying: outage.lastError
        )
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
    /// cancelled, and closes what it made), and whoever keeps the connection for this run stops.
    func close() async {
        let previous = state.withLock { state -> Phase in
            defer {
                state.phase = .disconnected(next: 0)
                state.epoch += 1
                state.outage = nil
            }
            return state.phase
        }
        switch previous {
        case .live(let live):
            await live.connection.close()
        case .connecting(let attempt, _):
            attempt.task.cancel()
            // Ends soon: cancelled, and it closes a connection made meanwhile itself.
            await attempt.task.value
        case .disconnected:
            break
        }
    }

    /// Starts generation `generation`'s connect (or recovery) and makes it the phase; called
    /// under the lock, so the attempt's task, which takes the lock when it ends, sees its phase.
    private func startAttempt(generation: Int, in state: inout State) -> PendingResult<Live> {
        let result = PendingResult<Live>()
        let task = Task {
            let outcome: Result<Live, any Error>
            do {
                outcome = .success(try await self.connectOrRecover(generation: generation))
            } catch {
                outcome = .failure(error)
            }
            let current = self.state.withLock { state -> Bool in
                guard case .connecting(let attempt, _) = state.phase, attempt.result === result else { return false }
                switch outcome {
                case .success(let live):
                    state.phase = .live(live)
                    state.outage = nil
                case .failure:
                    // The next use tries the same generation again (a recovery still recovers).
                    state.phase = .disconnected(next: generation)
                }
                return true
            }
            if !current, case .success(let orphan) = outcome {
                // The session was closed meanwhile: nobody will use this connection.
                await orphan.connection.close()
                result.resolve(.failure(RabbitError(.connectionClosed, "the transport is closed")))
                return
            }
            result.resolve(outcome)
        }
        state.phase = .connecting(Attempt(task: task, result: result), generation: generation)
        return result
    }

    /// A connection for generation `generation`: the first connects once; a later one tries as
    /// the reconnect policy says, recovering the topology and consumers on the connection made.
    private func connectOrRecover(generation: Int) async throws -> Live {
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
                state.withLock { $0.outage?.lastError = error }
                if error is CancellationError || Task.isCancelled { throw error }
                if let maximum = policy.maximumAttempts, attempt >= maximum {
                    logger.error("RabbitMQ: giving up reconnecting after \(attempt) attempts", metadata: ["error": "\(error)"])
                    throw error
                }
                logger.warning("RabbitMQ reconnect attempt \(attempt) failed; trying again", metadata: ["error": "\(error)"])
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
