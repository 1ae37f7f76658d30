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
///
/// Whoever needs the connection while it is being made waits on the run's ``ConnectionGate``, not
/// on the connect task: the wait ends at once when the waiting task is cancelled, and at its
/// deadline (a publish's ``RabbitConfiguration/publishTimeout``) with an error naming the outage,
/// whatever the reconnect policy is doing. The connect task records its own outcome, so it does
/// not matter whether anyone still waits for it.
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
        /// A connect (or a recovery: many attempts) under way; `attempt` tells it from the ones
        /// before.
        case connecting(Task<Live, any Error>, generation: Int, attempt: Int)
        case live(Live)
    }

    private struct State {
        var phase: Phase = .disconnected(next: 0)
        var epoch = 0
        /// Why the last live connection was lost (for the connection state while reconnecting).
        var lastLoss: String?
        /// Up while the live connection is open; what waiters for the connection wait on. A
        /// connect that fails for good (the first one, or a recovery that gave up) finishes it
        /// with its error, and so does ``close()``; a new one takes its place.
        var gate = ConnectionGate(isUp: false)
        var attempts = 0
    }

    private enum Next {
        case ready(Live)
        case wait(ConnectionGate)
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
    /// - Parameter deadline: how long to wait for a connection being made; nil waits as long as
    ///   the reconnect policy tries.
    /// - Throws: ``RabbitError`` `.connectionUnavailable` (naming the outage) at the deadline;
    ///   `CancellationError` at once when the waiting task is cancelled; the connect's error when
    ///   it failed for good.
    func live(deadline: ContinuousClock.Instant? = nil) async throws -> Live {
        while true {
            let next = try state.withLock { state throws -> Next in
                switch state.phase {
                case .disconnected(let generation):
                    startConnecting(generation: generation, in: &state)
                    return .wait(state.gate)
                case .connecting:
                    return .wait(state.gate)
                case .live(let live) where live.connection.isOpen:
                    return .ready(live)
                case .live(let lost):
                    let reason = lost.connection.closeReason
                    guard configuration.reconnect != nil else {
                        throw reason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (reconnecting is off)")
                    }
                    state.lastLoss = reason.map { "\($0)" } ?? "socket closed"
                    state.gate.markDown(reason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (socket closed)"))
                    startConnecting(generation: lost.generation + 1, in: &state)
                    return .wait(state.gate)
                }
            }
            switch next {
            case .ready(let live):
                return live
            case .wait(let gate):
                // A year stands for "no deadline": the wait still ends on cancellation.
                let until = deadline ?? .now + .seconds(365 * 86_400)
                let publishTimeout = configuration.publishTimeout
                let server = "\(configuration.host):\(configuration.port)"
                try await gate.waitUntilUp(deadline: until) { outage in
                    RabbitError(
                        .connectionUnavailable,
                        "no connection to RabbitMQ at \(server) within the publish timeout (\(publishTimeout)): \(outage.summary)",
                        underlying: outage.lastError
                    )
                }
                // Up: the connection the wait was for, even if it was lost again meanwhile (as a
                // connect that just finished would hand it over: its user finds out, and the
                // next use reconnects).
                if case .live(let live) = state.withLock({ $0.phase }) { return live }
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
            case .connecting(_, let generation, _) where generation > 0:
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
            case .connecting(_, let generation, _):
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
        let (previous, gate) = state.withLock { state -> (Phase, ConnectionGate) in
            defer {
                state.phase = .disconnected(next: 0)
                state.epoch += 1
                state.gate = ConnectionGate(isUp: false)
            }
            return (state.phase, state.gate)
        }
        // Whoever waits for this run's connection stops now.
        gate.finish(RabbitError(.connectionClosed, "the transport is closed"))
        switch previous {
        case .live(let live):
            await live.connection.close()
        case .connecting(let task, _, _):
            task.cancel()
            if let live = try? await task.value { await live.connection.close() }
        case .disconnected:
            break
        }
    }

    /// Starts the connect task of `generation` (under the lock): it records its outcome itself,
    /// live or failed for good, and opens or finishes the gate.
    private func startConnecting(generation: Int, in state: inout State) {
        state.attempts += 1
        let attempt = state.attempts
        let gate = state.gate
        let task = Task {
            do {
                let live = try await self.connect(generation: generation, gate: gate)
                let current = self.state.withLock { state -> Bool in
                    guard case .connecting(_, _, attempt) = state.phase else { return false }
                    state.phase = .live(live)
                    return true
                }
                // Otherwise the session closed meanwhile: close() closes the connection.
                if current {
                    live.connection.closeFuture.whenComplete { _ in
                        gate.markDown(live.connection.closeReason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost (socket closed)"))
                    }
                    gate.markUp()
                }
                return live
            } catch {
                let failed = self.state.withLock { state -> Bool in
                    guard case .connecting(_, let generation, attempt) = state.phase else { return false }
                    // The next use tries the same generation again (a recovery still recovers),
                    // with a gate of its own.
                    state.phase = .disconnected(next: generation)
                    state.gate = ConnectionGate(isUp: false)
                    return true
                }
                if failed { gate.finish(error) }
                throw error
            }
        }
        state.phase = .connecting(task, generation: generation, attempt: attempt)
    }

    /// Connects: once for the first connection, and with the reconnect policy's attempts (each
    /// failure noted on `gate`) for the next ones, which are recovered before anyone uses them.
    private func connect(generation: Int, gate: ConnectionGate) async throws -> Live {
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
                gate.noteError(error)
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
