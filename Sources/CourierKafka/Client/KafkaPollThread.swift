import Courier
import Synchronization

/// The thread that polls one librdkafka handle, from its start until ``stop()``, then joined.
///
/// Each iteration blocks in librdkafka for at most the poll timeout, so a stop is seen within it
/// and the thread never spins. A thread rather than a task: librdkafka's poll blocks, which would
/// hold one of the cooperative pool's few threads, and a non-blocking poll would need a timer
/// between polls (polling where librdkafka's own wait is the event).
final class KafkaPollThread: Sendable {
    /// Where the loop is; it only moves forward.
    enum Phase: UInt8, AtomicRepresentable {
        case polling
        /// ``stop()`` was called: the loop ends after its current iteration.
        case stopping
        /// The loop and its `finally` are done.
        case ended
    }

    private let phase = Atomic<Phase>(.polling)
    private let ended = Latch()

    /// Starts the thread: `iteration` runs until ``stop()``, then `finally`.
    init(name: String, _ iteration: @escaping @Sendable () -> Void, finally: @escaping @Sendable () -> Void = {}) {
        // The thread holds the object for the loop's life.
        startDedicatedThread(named: name, finished: ended) { [self] in
            while phase.load(ordering: .acquiring) == .polling { iteration() }
            finally()
            phase.store(.ended, ordering: .releasing)
        }
    }

    /// Whether the loop still polls (no ``stop()`` yet).
    var isPolling: Bool { phase.load(ordering: .acquiring) == .polling }

    /// Asks the loop to end and waits until it has (and its `finally` ran). Returns false if it
    /// was stopped before (only the first call waits).
    @discardableResult
    func stop() async -> Bool {
        let (stopped, _) = phase.compareExchange(expected: .polling, desired: .stopping, ordering: .acquiringAndReleasing)
        guard stopped else { return false }
        await ended.wait()
        return true
    }
}
