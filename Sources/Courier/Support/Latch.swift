/// Opens once; whoever waits, before or after, passes then (a cancelled waiter passes at once).
package final class Latch: Sendable {
    // A buffer that never holds anything: finishing it releases every waiter.
    private let buffer = HandOffQueue<Never>()

    package init() {}

    /// Whether ``open()`` was called.
    package var isOpen: Bool { buffer.isFinished }

    package func open() {
        buffer.finish()
    }

    package func wait() async {
        _ = await buffer.next()
    }

    /// Waits until the latch opens, `deadline` passes or the task is cancelled, whichever is first.
    package func wait(until deadline: ContinuousClock.Instant) async {
        let remaining = deadline - .now
        guard remaining > .zero, !isOpen else { return }
        _ = await buffer.next(timeout: remaining)
    }
}
