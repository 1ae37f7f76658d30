import Courier
import Synchronization

/// The thread that polls one librdkafka handle: started once, asked to stop, joined.
///
/// Each iteration blocks in librdkafka for at most the poll timeout, so a stop request is
/// seen within it; the thread never spins.
final class KafkaPollThread: Sendable {
    private let stopRequested = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let ended = Latch()
    private let name: String

    init(name: String) {
        self.name = name
    }

    /// Runs `iteration` until ``stop()``, then `finally`, on a thread of its own.
    func start(_ iteration: @escaping @Sendable () -> Void, finally: @escaping @Sendable () -> Void = {}) {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        startDedicatedThread(named: name, finished: ended) { [self] in
            while !stopRequested.load(ordering: .relaxed) { iteration() }
            finally()
        }
    }

    /// Asks the loop to end and waits until it has (and its `finally` ran). Returns false if it
    /// never started, or was stopped before.
    @discardableResult
    func stop() async -> Bool {
        guard !stopRequested.exchange(true, ordering: .relaxed) else { return false }
        guard started.load(ordering: .relaxed) else { return false }
        await ended.wait()
        return true
    }

    var isStopping: Bool { stopRequested.load(ordering: .relaxed) }
}
