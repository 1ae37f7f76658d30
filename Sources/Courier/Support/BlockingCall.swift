import Foundation

/// Runs a blocking call of a C client library (connect, flush, a synchronous commit) on a thread
/// of its own, never on Swift's cooperative pool, and returns its result.
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
