@_spi(BrokerModule) @testable import Courier
import Synchronization
import Testing

/// The one waiting primitive, and what is built on it.
@Suite("HandOffQueue")
struct HandOffQueueTests {
    @Test("FIFO; a consumer waits for the next element and takes up to a batch of what is ready")
    func fifoAndBatches() async throws {
        let buffer = HandOffQueue<Int>()
        async let first = buffer.next()
        try await Task.sleep(for: .milliseconds(20))
        buffer.append(1)
        #expect(await first == [1])
        for value in 2...5 { buffer.append(value) }
        #expect(await buffer.next(upTo: 3) == [2, 3, 4])
        #expect(buffer.take(upTo: 10) == [5])
        #expect(buffer.take() == nil)
    }

    @Test("a full buffer makes producers wait, in order, and refuses offers; pushFront goes past the bound")
    func backPressure() async throws {
        let buffer = HandOffQueue<Int>(capacity: 2)
        try await buffer.push(1)
        try await buffer.push(2)
        #expect(buffer.offer(99) == .full)
        let pushed = Inbox<Int>()
        let producers = Task {
            try await buffer.push(3)
            pushed.put(3)
            try await buffer.push(4)
            pushed.put(4)
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(pushed.values.isEmpty, "the producer waits while the buffer is full")
        #expect(await buffer.next() == [1])
        try await pushed.wait(count: 1)
        buffer.pushFront(0)
        #expect(buffer.count == 3)
        #expect(await buffer.next(upTo: 3) == [0, 2, 3])
        try await producers.value
        #expect(await buffer.next() == [4])
    }

    @Test("cancelling a waiting consumer returns nil; a waiting producer throws and adds nothing")
    func cancellation() async throws {
        let buffer = HandOffQueue<Int>(capacity: 1)
        let consumer = Task { await buffer.next() }
        try await Task.sleep(for: .milliseconds(20))
        consumer.cancel()
        #expect(await consumer.value == nil)
        try await buffer.push(1)
        let producer = Task { try await buffer.push(2) }
        try await Task.sleep(for: .milliseconds(20))
        producer.cancel()
        await #expect(throws: CancellationError.self) { try await producer.value }
        #expect(await buffer.next(upTo: 5) == [1])
        #expect(buffer.count == 0)
    }

    @Test("stopping one consumer ends its waits only; finishing drains, then ends everyone")
    func stopAndFinish() async throws {
        let buffer = HandOffQueue<Int>()
        let stopped = Task { await buffer.next(consumer: 1) }
        let other = Task { await buffer.next(consumer: 2) }
        try await Task.sleep(for: .milliseconds(20))
        buffer.stop(consumer: 1)
        #expect(await stopped.value == nil)
        #expect(await buffer.next(consumer: 1) == nil, "a stopped consumer stays stopped")
        buffer.append(7)
        #expect(await other.value == [7])
        buffer.append(8)
        buffer.finish()
        #expect(buffer.offer(9) == .finished)
        await #expect(throws: HandOffQueue<Int>.Finished.self) { try await buffer.push(9) }
        #expect(await buffer.next() == [8], "what was queued is still taken")
        #expect(await buffer.next() == nil)
    }

    @Test("the pressure signal: full at capacity, drained at the low mark")
    func pressure() async throws {
        let signals = Mutex<[Bool]>([])
        let buffer = HandOffQueue<Int>(capacity: 4, resumeBelow: 1) { full in signals.withLock { $0.append(full) } }
        for value in 1...6 { buffer.append(value) }
        #expect(signals.withLock { $0 } == [true])
        _ = buffer.take(upTo: 4)
        #expect(signals.withLock { $0 } == [true])
        _ = buffer.take()
        #expect(signals.withLock { $0 } == [true, false])
    }

    @Test("correlated replies: kept when early, refused when unexpected or late, many in flight")
    func correlatedReplies() async throws {
        let replies = CorrelatedReplies<String, Int>()
        replies.expect("a")
        replies.expect("b")
        #expect(replies.deliver(1, for: "a"))
        #expect(!replies.deliver(9, for: "nobody"))
        async let b = replies.wait(for: "b")
        #expect(await replies.wait(for: "a") == 1)
        #expect(!replies.deliver(2, for: "a"), "a second reply is refused")
        try await Task.sleep(for: .milliseconds(20))
        #expect(replies.deliver(3, for: "b"))
        #expect(await b == 3)
        replies.expect("c")
        async let c = replies.wait(for: "c")
        try await Task.sleep(for: .milliseconds(20))
        replies.cancelAll()
        #expect(await c == nil)
        #expect(replies.pendingCount == 0)
    }

    @Test("withTimeout returns the result in time, throws the given error when late and cancels the operation")
    func timeout() async throws {
        #expect(try await withTimeout(.seconds(5), error: { TimedOut() }) { 42 } == 42)
        let cancelled = Inbox<Void>()
        await #expect(throws: TimedOut.self) {
            try await withTimeout(.milliseconds(50), error: { TimedOut() }) {
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    cancelled.put(())
                    throw error
                }
            }
        }
        try await cancelled.wait(count: 1)
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.seconds(Int64.max).wholeNanoseconds == .max)
    }

    @Test("next(upTo:timeout:) returns what is ready, waits for the first element up to the timeout, and never drops one")
    func nextWithTimeout() async throws {
        let buffer = HandOffQueue<Int>()
        let started = ContinuousClock.now
        #expect(await buffer.next(upTo: 3, timeout: .milliseconds(50)) == nil)
        #expect(ContinuousClock.now - started >= .milliseconds(50))
        buffer.append(1)
        buffer.append(2)
        #expect(await buffer.next(upTo: 5, timeout: .seconds(5)) == [1, 2])
        Task {
            try await Task.sleep(for: .milliseconds(20))
            buffer.append(3)
        }
        #expect(await buffer.next(upTo: 1, timeout: .seconds(5)) == [3])
        // Many short waits racing appends: every element comes out exactly once, in order.
        let producer = Task {
            for value in 0..<500 {
                buffer.append(value)
                if value % 50 == 0 { try await Task.sleep(for: .milliseconds(1)) }
            }
        }
        var seen: [Int] = []
        while seen.count < 500 {
            seen += await buffer.next(upTo: 7, timeout: .microseconds(200)) ?? []
        }
        try await producer.value
        #expect(seen == Array(0..<500))
    }
}
