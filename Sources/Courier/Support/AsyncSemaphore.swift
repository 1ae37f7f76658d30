/// A counting semaphore for async code: ``acquire()`` waits while every permit is taken,
/// ``release()`` gives one back. Waiters are served first come, first served.
///
/// A permit taken is an element in an ``HandOffQueue`` of that capacity, so waiting, order and
/// cancellation are the one waiting primitive's, not a continuation queue of its own.
package struct AsyncSemaphore: Sendable {
    private let taken: HandOffQueue<Void>

    /// A semaphore with `permits` permits (at least one).
    package init(permits: Int) {
        taken = HandOffQueue(capacity: max(1, permits))
    }

    /// Takes a permit, waiting for one if need be.
    /// - Throws: `CancellationError` if the task is cancelled while waiting (no permit is taken).
    package func acquire() async throws {
        do {
            try await taken.push(())
        } catch is HandOffQueue<Void>.Finished {
            throw CancellationError()
        }
    }

    /// Gives a permit back (to the longest waiter, if any).
    package func release() {
        _ = taken.take()
    }
}
