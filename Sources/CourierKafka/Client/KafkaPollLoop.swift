@_spi(BrokerModule) import Courier
import Synchronization

/// The poll loop of one librdkafka handle: each iteration blocks in librdkafka for at most the
/// poll timeout (so a stop is seen within it, and the loop never spins), on the loop's own
/// executor, never on Swift's cooperative pool.
///
/// A loop does not start itself: ``KafkaPollLoops`` drives it, in ``KafkaTransport/run()``'s
/// task group (or, for a program that never runs the broker, in the one task the transport
/// keeps for that). ``stop()`` ends it after its current iteration and returns once its
/// `finally` ran, whether or not it was ever driven.
final class KafkaPollLoop: Sendable {
    /// Where the loop is; it only moves forward.
    enum Phase: UInt8, AtomicRepresentable {
        /// Made, not driven yet.
        case created
        case polling
        /// ``stop()`` was called: the loop ends after its current iteration.
        case stopping
        /// The loop and its `finally` are done.
        case ended
    }

    private let phase = Atomic<Phase>(.created)
    private let ended = Latch()
    private let executor: BlockingExecutor
    private let iteration: @Sendable () -> Void
    private let finally: @Sendable () -> Void

    /// - Parameters:
    ///   - name: names the executor's thread.
    ///   - iteration: one poll, blocking up to the poll timeout.
    ///   - finally: runs once, on the loop's executor, after the last iteration (or at once when
    ///     the loop is stopped before it was driven).
    init(name: String, _ iteration: @escaping @Sendable () -> Void, finally: @escaping @Sendable () -> Void = {}) {
        executor = BlockingExecutor(label: name)
        self.iteration = iteration
        self.finally = finally
    }

    /// Whether the loop still takes work (made or polling, no ``stop()`` yet).
    var isOpen: Bool {
        let phase = phase.load(ordering: .acquiring)
        return phase == .created || phase == .polling
    }

    /// Polls until ``stop()``, then runs `finally`. Returns at once if the loop is driven
    /// already or was stopped. Cancellation does not end it: the loop belongs to its client, which
    /// stops it when it closes.
    func run() async {
        guard phase.compareExchange(expected: .created, desired: .polling, ordering: .acquiringAndReleasing).exchanged else { return }
        while phase.load(ordering: .acquiring) == .polling {
            await executor.run(iteration)
        }
        await end()
    }

    /// Asks the loop to end and waits until it has (and its `finally` ran). Returns false if it
    /// was stopped before (only the first call waits).
    @discardableResult
    func stop() async -> Bool {
        if phase.compareExchange(expected: .created, desired: .stopping, ordering: .acquiringAndReleasing).exchanged {
            await end()
            return true
        }
        guard phase.compareExchange(expected: .polling, desired: .stopping, ordering: .acquiringAndReleasing).exchanged else { return false }
        await ended.wait()
        return true
    }

    private func end() async {
        await executor.run(finally)
        phase.store(.ended, ordering: .releasing)
        ended.open()
    }
}
