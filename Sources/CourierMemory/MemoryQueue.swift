@_spi(BrokerModule) import Courier
import Synchronization

/// One destination's bounded FIFO queue, shared by competing consumers: the core's
/// ``HandOffQueue`` (producers wait while it is full, consumers while it is empty, never polling)
/// plus the destination's counters. A nacked message goes back to the front past the capacity
/// bound: it was already counted once, and a subscriber holds at most its `maxConcurrency`
/// deliveries, so the overshoot is bounded too.
final class MemoryQueue: Sendable {
    let name: String
    let capacity: Int
    private let buffer: HandOffQueue<IncomingMessage>
    private let counters = Mutex(MemoryQueueStatistics())

    init(name: String, capacity: Int) {
        self.name = name
        self.capacity = capacity
        self.buffer = HandOffQueue(capacity: capacity)
    }

    var statistics: MemoryQueueStatistics {
        var statistics = counters.withLock { $0 }
        statistics.depth = buffer.count
        return statistics
    }

    /// Appends `message`, waiting while the queue is full.
    func enqueue(_ message: IncomingMessage) async throws {
        try await buffer.push(message)
        counters.withLock { $0.enqueued += 1 }
    }

    /// Records a settlement of `count` messages; the caller puts redelivered ones back.
    func recordSettlement(_ request: Settlement.Request, count: Int) {
        counters.withLock { counters in
            if request.redelivers {
                counters.nacked += count
            } else if request.outcome == .ack {
                counters.acked += count
            } else {
                counters.rejected += count
            }
        }
    }

    /// Puts a nacked message back at the front.
    func requeue(_ message: IncomingMessage) {
        buffer.pushFront(message)
    }

    /// Takes up to `maxMessages` ready messages, waiting for one; nil once `consumer` is stopped
    /// or the waiting task is cancelled.
    func dequeue(consumer: Int, maxMessages: Int) async -> [IncomingMessage]? {
        await buffer.next(upTo: maxMessages, consumer: consumer)
    }

    /// Stops `consumer`: its waiting and later dequeues return nil.
    func stop(consumer: Int) {
        buffer.stop(consumer: consumer)
    }
}

/// Counters of one in-memory destination.
public struct MemoryQueueStatistics: Sendable, Hashable {
    /// Messages waiting in the queue now.
    public var depth = 0
    /// Messages accepted into the queue so far.
    public var enqueued = 0
    /// Deliveries acknowledged.
    public var acked = 0
    /// Deliveries settled for redelivery (a nack, or a reject with requeue): each went back to the front.
    public var nacked = 0
    /// Deliveries dropped (a reject, or a nack without requeue).
    public var rejected = 0
}
