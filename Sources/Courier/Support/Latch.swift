/// Opens once; whoever waits, before or after, passes then (a cancelled waiter passes at once).
package final class Latch: Sendable {
    // A buffer that never holds anything: finishing it releases every waiter.
    private let buffer = AsyncBuffer<Never>()

    package init() {}

    package func open() {
        buffer.finish()
    }

    package func wait() async {
        _ = await buffer.next()
    }
}
