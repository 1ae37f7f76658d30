import Foundation
import Synchronization

/// One connection made on first use and shared by everyone who needs it ("connect once, many
/// waiters"), made again once it is lost, with its lifecycle as one explicit ``Phase``.
///
/// - `idle`: no connection; the next use starts an attempt (the first connect, or after a failed
///   attempt or a ``close()``).
/// - `connecting`: one attempt (a connect, or a recovery of as many attempts as the module's
///   ``ReconnectPolicy`` allows) is under way; every caller waits for its ``PendingResult``, each
///   until a deadline of its own and no longer than its task is not cancelled. The attempt's task
///   moves the phase on when it ends, so the connection an attempt made is what its waiters get.
/// - `live`: a connection. One found lost (`isOpen` false) makes the next use start the next
///   generation's attempt, unless the module refuses (no reconnecting): only one can start.
///
/// - `closed`: closed for good (``close(permanently:)``): every use throws the closed error.
///
/// While there is no connection after one was lost, ``outage`` says since when and the last
/// error, for the error of a wait that ran out of time. ``close(permanently:)`` ends the current
/// run (its ``epoch``): an attempt under way is cancelled (and closes what it made), the
/// connection is closed, and a later use connects afresh, or, closed permanently, fails.
package final class SharedConnection<Connection: Sendable>: Sendable {
    /// Where the connection is.
    package enum Phase: Sendable {
        /// No connection; the next use makes generation `next` (0: the first connection).
        case idle(next: Int)
        /// An attempt at generation `generation` is under way.
        case connecting(PendingResult<Connection>, generation: Int)
        /// A connection of generation `generation`, open or found lost.
        case live(Connection, generation: Int)
        /// Closed for good: no connection is made any more.
        case closed
    }

    private struct State {
        var phase: Phase = .idle(next: 0)
        /// The task of the attempt under way, for ``close()`` to cancel.
        var attempt: Task<Void, Never>?
        var epoch = 0
        var outage: ConnectionGate.Outage?
        /// Whether an attempt ever succeeded, and the last failed attempt's error (also before
        /// the first connection, when there is no outage yet).
        var everConnected = false
        var lastAttemptError: (any Error)?
    }

    private enum Next {
        case ready(Connection)
        case wait(PendingResult<Connection>)
    }

    private let state = Mutex(State())
    private let isOpen: @Sendable (Connection) -> Bool
    private let lost: @Sendable (Connection) throws -> (any Error)?
    private let connect: @Sendable (_ generation: Int, _ noteAttemptError: @escaping @Sendable (any Error) -> Void) async throws -> Connection
    private let discard: @Sendable (Connection) async -> Void
    private let closedError: @Sendable () -> any Error

    /// - Parameters:
    ///   - isOpen: whether a connection is still usable.
    ///   - lost: called (under the lock) when a use finds the connection lost, before the next
    ///     attempt starts: returns why it was lost, or throws to refuse reconnecting (the caller
    ///     gets that error, and the phase stays as it is).
    ///   - connect: makes generation `generation`'s connection (0: the first; later ones recover),
    ///     reporting each failed try of a recovery through `noteAttemptError` (the outage's last
    ///     error).
    ///   - discard: closes a connection: the live one at ``close()``, or one an attempt made
    ///     after it.
    ///   - closedError: what waiters of an attempt cut short by ``close()`` get.
    package init(
        isOpen: @escaping @Sendable (Connection) -> Bool,
        lost: @escaping @Sendable (Connection) throws -> (any Error)?,
        connect: @escaping @Sendable (_ generation: Int, _ noteAttemptError: @escaping @Sendable (any Error) -> Void) async throws -> Connection,
        discard: @escaping @Sendable (Connection) async -> Void,
        closedError: @escaping @Sendable () -> any Error
    ) {
        self.isOpen = isOpen
        self.lost = lost
        self.connect = connect
        self.discard = discard
        self.closedError = closedError
    }

    /// The current run: ``close()`` starts the next.
    package var epoch: Int { state.withLock { $0.epoch } }

    /// Since when there is no connection after one was lost, and the last error; nil while
    /// connected, before the first loss, and after ``close()``.
    package var outage: ConnectionGate.Outage? { state.withLock { $0.outage } }

    /// Whether an attempt ever made a connection.
    package var hasConnected: Bool { state.withLock { $0.everConnected } }

    /// The last failed attempt's error, until an attempt succeeds.
    package var lastAttemptError: (any Error)? { state.withLock { $0.lastAttemptError } }

    /// The connection while the phase is `live`, open or not (nothing is waited for or started).
    package var current: Connection? {
        state.withLock { state in
            guard case .live(let connection, _) = state.phase else { return nil }
            return connection
        }
    }

    /// Reads (or, for a module's own transitions such as replacing a channel, changes) the phase
    /// under the lock, with the epoch.
    package func withPhase<Result>(_ body: (inout Phase, _ epoch: Int) throws -> Result) rethrows -> Result {
        try state.withLock { state in try body(&state.phase, state.epoch) }
    }

    /// Records `error` as the outage's last error (a failed attempt of a recovery).
    private func noteAttemptError(_ error: any Error) {
        state.withLock { state in
            state.outage?.lastError = error
            state.lastAttemptError = error
        }
    }

    /// The connection: the current one while it is open, otherwise the one being made.
    ///
    /// - Parameter deadline: how long to wait for a connection being made; nil waits for the
    ///   attempt to end.
    /// - Returns: nil when `deadline` passed first (the attempt goes on).
    /// - Throws: the attempt's error, the `lost` closure's, the closed error once closed
    ///   permanently, or `CancellationError` at once when the calling task is cancelled (the
    ///   attempt goes on for whoever else needs it).
    package func connection(deadline: ContinuousClock.Instant? = nil) async throws -> Connection? {
        let next = try state.withLock { state throws -> Next in
            switch state.phase {
            case .idle(let generation):
                return .wait(startAttempt(generation: generation, in: &state))
            case .connecting(let result, _):
                return .wait(result)
            case .live(let connection, _) where isOpen(connection):
                return .ready(connection)
            case .live(let connection, let generation):
                let reason = try lost(connection)
                state.outage = ConnectionGate.Outage(lastError: reason)
                return .wait(startAttempt(generation: generation + 1, in: &state))
            case .closed:
                throw closedError()
            }
        }
        switch next {
        case .ready(let connection):
            return connection
        case .wait(let result):
            return try await result.value(until: deadline)
        }
    }

    /// Ends the current run: an attempt under way is cancelled (and closes what it made), and
    /// the connection is closed. The next use connects afresh (generation 0), or, with
    /// `permanently`, throws the closed error.
    package func close(permanently: Bool = false) async {
        let (previous, attempt) = state.withLock { state -> (Phase, Task<Void, Never>?) in
            defer {
                state.phase = permanently ? .closed : .idle(next: 0)
                state.attempt = nil
                state.epoch += 1
                state.outage = nil
            }
            return (state.phase, state.attempt)
        }
        switch previous {
        case .live(let connection, _):
            await discard(connection)
        case .connecting:
            attempt?.cancel()
            // Ends soon: cancelled, and it discards a connection made meanwhile itself.
            await attempt?.value
        case .idle, .closed:
            break
        }
    }

    /// Starts generation `generation`'s attempt and makes it the phase. Called under the lock, so
    /// the attempt's task, which takes the lock when it ends, finds its phase in place.
    private func startAttempt(generation: Int, in state: inout State) -> PendingResult<Connection> {
        let result = PendingResult<Connection>()
        let task = Task {
            let outcome: Result<Connection, any Error>
            do {
                outcome = .success(try await self.connect(generation) { error in self.noteAttemptError(error) })
            } catch {
                outcome = .failure(error)
            }
            let current = self.state.withLock { state -> Bool in
                guard case .connecting(let pending, _) = state.phase, pending === result else { return false }
                state.attempt = nil
                switch outcome {
                case .success(let connection):
                    state.phase = .live(connection, generation: generation)
                    state.outage = nil
                    state.everConnected = true
                    state.lastAttemptError = nil
                case .failure(let error):
                    // The next use tries the same generation again (a recovery still recovers).
                    state.phase = .idle(next: generation)
                    state.outage?.lastError = error
                    state.lastAttemptError = error
                }
                return true
            }
            guard current else {
                // Closed meanwhile: the waiters hear so, and nobody will use what was made.
                result.resolve(.failure(self.closedError()))
                if case .success(let orphan) = outcome { await self.discard(orphan) }
                return
            }
            result.resolve(outcome)
        }
        state.phase = .connecting(result, generation: generation)
        state.attempt = task
        return result
    }
}
