import Synchronization

/// The result of one piece of work under way (a connect, a recovery), awaited by any number of
/// callers, each wait bounded by its own deadline and ended at once by its task's cancellation.
///
/// Awaiting a `Task`'s `value` can do neither: it ignores the waiter's cancellation and has no
/// deadline, so a caller with a timeout would wait as long as the work (a reconnect loop that
/// tries for ever). The work resolves this once; waiters before and after get the same result.
package final class PendingResult<Value: Sendable>: Sendable {
    private let result = Mutex<Result<Value, any Error>?>(nil)
    private let settled = Latch()

    package init() {}

    /// The result, if the work is done.
    package var current: Result<Value, any Error>? {
        result.withLock { $0 }
    }

    /// Sets the result (the first call wins) and lets every waiter go on.
    package func resolve(_ outcome: Result<Value, any Error>) {
        let first = result.withLock { result -> Bool in
            guard result == nil else { return false }
            result = outcome
            return true
        }
        if first { settled.open() }
    }

    /// The work's value once it is done, or nil if `deadline` passed first (nil: no deadline).
    /// - Throws: the work's error; `CancellationError` as soon as the waiting task is cancelled.
    package func value(until deadline: ContinuousClock.Instant? = nil) async throws -> Value? {
        if let outcome = current { return try outcome.get() }
        if let deadline {
            await settled.wait(until: deadline)
        } else {
            await settled.wait()
        }
        if let outcome = current { return try outcome.get() }
        try Task.checkCancellation()
        return nil
    }
}
