import Dispatch
import Foundation

/// Where one client of a C library makes its blocking calls (librdkafka's metadata, admin,
/// subscribe and close): one serial queue per client, made with the client and kept for its
/// life, so that a call never holds one of the few threads of Swift's cooperative pool and never
/// starts a thread of its own. Calls of one client run one after another, in order.
package struct BlockingExecutor: Sendable {
    private let queue: DispatchQueue

    /// - Parameter label: names the queue's thread in a debugger or a crash report.
    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `body` on the client's queue, after the calls before it, and returns its result.
    package func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}

/// Runs a blocking call of a C client library (nats.c's connect, flush, a key-value request) on a
/// thread of its own, never on Swift's cooperative pool, and returns its result. For calls that
/// may run side by side without bound; a client whose calls can take turns uses a
/// ``BlockingExecutor``.
package func onDedicatedThread<T: Sendable>(named name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.name = name
        thread.start()
    }
}

/// Starts a long-lived thread for a C library's own loop (librdkafka's poll loop); `finished`
/// opens when `body` has returned, so an async caller can join it.
package func startDedicatedThread(named name: String, finished: Latch, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        body()
        finished.open()
    }
    thread.name = name
    thread.start()
}
