public import Courier
import Synchronization

/// Collects values from handlers, so a test waits for a count with a deadline, never by polling.
///
/// ```swift
/// let received = Collector<String>()
/// broker.subscriber("greetings") { (text: String, _) in received.put(text) }
/// // … publish …
/// let texts = try await received.wait(count: 2)
/// ```
public final class Collector<Value: Sendable>: Sendable {
    private struct State {
        var values: [Value] = []
        var waiters: [(count: Int, latch: Latch)] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Everything collected so far, in arrival order.
    public var collected: [Value] { state.withLock { $0.values } }

    /// Adds a value.
    public func put(_ value: Value) {
        let satisfied = state.withLock { state -> [Latch] in
            state.values.append(value)
            let count = state.values.count
            let satisfied = state.waiters.filter { $0.count <= count }.map(\.latch)
            state.waiters.removeAll { $0.count <= count }
            return satisfied
        }
        for latch in satisfied { latch.open() }
    }

    /// Waits until at least `count` values arrived and returns all of them.
    /// - Throws: ``CollectorTimeout`` after `timeout`.
    @discardableResult
    public func wait(count: Int, timeout: Duration = .seconds(10)) async throws -> [Value] {
        let latch = Latch()
        let ready = state.withLock { state -> Bool in
            if state.values.count >= count { return true }
            state.waiters.append((count, latch))
            return false
        }
        if !ready {
            try await withTimeout(timeout, error: { [self] in CollectorTimeout(expected: count, arrived: collected.count) }) {
                await latch.wait()
            }
        }
        return collected
    }
}

/// Fewer values arrived than a test waited for.
public struct CollectorTimeout: Error, CustomStringConvertible {
    public var expected: Int
    public var arrived: Int
    public var description: String { "waited for \(expected) value(s), \(arrived) arrived" }
}
