import Foundation
import Synchronization

/// Whether a client's connection is up, and a wait until it is: the one way a publish waits out a
/// reconnect, on every broker module.
///
/// The client marks the gate down when it loses its connection (with the error, and again with
/// each failed connect attempt) and up once it is back; a publish calls
/// ``waitUntilUp(deadline:timeoutError:)`` first. The wait returns at once while the connection
/// is up, ends at once when the waiting task is cancelled (whatever the client's reconnect loop is
/// doing), and fails with the caller's error, which names the outage, once its deadline passes.
///
/// Each outage has a latch of its own (an ``HandOffQueue`` that never holds an element, finished
/// when the connection is back): its timed wait and cancellation handler are the buffer's.
package final class ConnectionGate: Sendable {
    /// An outage under way: since when the connection is down, and why it is not back yet.
    package struct Outage: Sendable {
        /// When the connection was lost (or, for a gate that started down, when it was made).
        package var since: ContinuousClock.Instant
        /// The same moment on the wall clock, for people reading the error.
        package var startedAt: Date
        /// The last error losing or re-establishing the connection (e.g. "connection refused").
        package var lastError: (any Error)?

        /// An outage that began now (or at `since`).
        package init(since: ContinuousClock.Instant = .now, startedAt: Date = Date(), lastError: (any Error)? = nil) {
            self.since = since
            self.startedAt = startedAt
            self.lastError = lastError
        }

        /// How long the connection has been down now.
        package var duration: Duration { .now - since }

        /// "down for 2.0 s (since 07:51:15.123 UTC; last error: …)", for an error's message.
        package var summary: String { summary(describing: { "\($0)" }) }

        /// ``summary``, with the last error told by `describe` (its bare message, say, without
        /// the module's prefix the error's description adds).
        package func summary(describing describe: (any Error) -> String) -> String {
            var text = "down for \(Self.seconds(duration)) (since \(Self.clockTime(startedAt)) UTC"
            if let lastError { text += "; last error: \(describe(lastError))" }
            return text + ")"
        }

        /// `2.0 s`: one decimal is what a person reading an outage needs.
        package static func seconds(_ duration: Duration) -> String {
            let tenths = (duration.wholeNanoseconds + 50_000_000) / 100_000_000
            return "\(tenths / 10).\(tenths % 10) s"
        }

        private static func clockTime(_ date: Date) -> String {
            let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
            let ofDay = ((milliseconds % 86_400_000) + 86_400_000) % 86_400_000
            func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
            let millis = ofDay % 1000
            let millisText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
            return "\(two(ofDay / 3_600_000)):\(two(ofDay / 60_000 % 60)):\(two(ofDay / 1000 % 60)).\(millisText)"
        }
    }

    private enum State {
        case up
        /// Down: waiters wait on the latch, which the connection's return finishes.
        case down(Outage, latch: HandOffQueue<Never>)
        /// Closed for good: every wait throws this.
        case finished(any Error)
    }

    private let state: Mutex<State>

    /// A gate that is up, or down since now.
    package init(isUp: Bool = false) {
        state = Mutex(isUp ? .up : .down(Outage(since: .now, startedAt: Date(), lastError: nil), latch: HandOffQueue()))
    }

    /// Whether the connection is up now.
    package var isUp: Bool {
        state.withLock { if case .up = $0 { true } else { false } }
    }

    /// The outage under way; nil while the connection is up or once the gate is finished.
    package var outage: Outage? {
        state.withLock { if case .down(let outage, _) = $0 { outage } else { nil } }
    }

    /// The connection is back: every waiter passes.
    package func markUp() {
        let latch = state.withLock { state -> HandOffQueue<Never>? in
            guard case .down(_, let latch) = state else { return nil }
            state = .up
            return latch
        }
        latch?.finish()
    }

    /// The connection is lost: an outage starts now, unless one is under way; `error`, if given,
    /// becomes its last error.
    package func markDown(_ error: (any Error)? = nil) {
        state.withLock { state in
            switch state {
            case .up:
                state = .down(Outage(since: .now, startedAt: Date(), lastError: error), latch: HandOffQueue())
            case .down(var outage, let latch):
                if let error { outage.lastError = error }
                state = .down(outage, latch: latch)
            case .finished:
                break
            }
        }
    }

    /// Records `error` as the last error of the outage under way (a failed connect attempt);
    /// nothing while the connection is up.
    package func noteError(_ error: any Error) {
        state.withLock { state in
            guard case .down(var outage, let latch) = state else { return }
            outage.lastError = error
            state = .down(outage, latch: latch)
        }
    }

    /// Closed for good: waiters and later waits throw `error`; later marks are ignored.
    package func finish(_ error: any Error) {
        let latch = state.withLock { state -> HandOffQueue<Never>? in
            if case .finished = state { return nil }
            defer { state = .finished(error) }
            if case .down(_, let latch) = state { return latch }
            return nil
        }
        latch?.finish()
    }

    /// Returns once the connection is up: at once if it is.
    /// - Throws: `CancellationError` as soon as the waiting task is cancelled; `timeoutError(outage)`
    ///   once `deadline` passes with the connection still down; the ``finish(_:)`` error once the
    ///   gate is finished.
    package func waitUntilUp(
        deadline: ContinuousClock.Instant,
        timeoutError: (Outage) -> any Error
    ) async throws {
        while true {
            let current = state.withLock { state -> Result<(Outage, HandOffQueue<Never>)?, any Error> in
                switch state {
                case .up: .success(nil)
                case .down(let outage, let latch): .success((outage, latch))
                case .finished(let error): .failure(error)
                }
            }
            guard let (outage, latch) = try current.get() else { return }
            try Task.checkCancellation()
            let remaining = deadline - .now
            guard remaining > .zero else { throw timeoutError(outage) }
            // Ends when the connection is back (the latch finishes), at the deadline, or at once
            // on cancellation; the loop then looks at the state again.
            _ = await latch.next(timeout: remaining)
            try Task.checkCancellation()
        }
    }
}
