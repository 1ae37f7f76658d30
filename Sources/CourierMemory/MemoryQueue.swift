import Courier
import NIOCore
import Synchronization

/// One destination's bounded FIFO queue, shared by competing consumers.
///
/// Producers wait while the queue is full; consumers wait while it is empty; both waits are
/// continuations resumed by the opposite side, never polling. A nacked message goes back to the
/// front past the capacity bound: it was already counted once, and a subscriber holds at most its
/// `maxConcurrency` deliveries, so the overshoot is bounded too.
final class MemoryQueue: Sendable {
    let name: String
    let capacity: Int
    private let state: Mutex<State>

    private struct ConsumerWaiter {
        var consumer: Int
        var maxMessages: Int
        var continuation: CheckedContinuation<[IncomingMessage]?, Never>
    }

    private struct ProducerWaiter {
        var id: Int
        var message: IncomingMessage
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var buffer = CircularBuffer<IncomingMessage>()
        var consumers = CircularBuffer<ConsumerWaiter>()
        var producers = CircularBuffer<ProducerWaiter>()
        var stoppedConsumers = Set<Int>()
        var nextProducerID = 0
        var statistics = MemoryQueueStatistics()
    }

    init(name: String, capacity: Int) {
        self.name = name
        self.capacity = capacity
        self.state = Mutex(State(buffer: CircularBuffer(initialCapacity: min(capacity, 1024))))
    }

    var statistics: MemoryQueueStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.depth = state.buffer.count
            return statistics
        }
    }

    // MARK: Producing

    /// Appends `message`, waiting while the queue is full.
    func enqueue(_ message: IncomingMessage) async throws {
        enum Action {
            case handedOver(ConsumerWaiter)
            case queued
            case wait
        }
        let action = state.withLock { state -> Action in
            if let waiter = state.consumers.popFirst() {
                state.statistics.enqueued += 1
                return .handedOver(waiter)
            }
            if state.buffer.count < capacity {
                state.buffer.append(message)
                state.statistics.enqueued += 1
                return .queued
            }
            return .wait
        }
        switch action {
        case .handedOver(let waiter):
            waiter.continuation.resume(returning: [message])
            return
        case .queued:
            return
        case .wait:
            break
        }

        let id = state.withLock { state -> Int in
            defer { state.nextProducerID += 1 }
            return state.nextProducerID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> ConsumerWaiter?? in
                    if Task.isCancelled { return .some(nil) }
                    if let waiter = state.consumers.popFirst() {
                        state.statistics.enqueued += 1
                        return .some(waiter)
                    }
                    if state.buffer.count < capacity {
                        state.buffer.append(message)
                        state.statistics.enqueued += 1
                        return .some(nil)
                    }
                    state.producers.append(ProducerWaiter(id: id, message: message, continuation: continuation))
                    return .none
                }
                switch resumeNow {
                case .none:
                    break
                case .some(.none):
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume()
                    }
                case .some(.some(let waiter)):
                    waiter.continuation.resume(returning: [message])
                    continuation.resume()
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> ProducerWaiter? in
                guard let index = state.producers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.producers.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Puts a nacked message back at the front.
    func requeue(_ message: IncomingMessage) {
        let waiter = state.withLock { state -> ConsumerWaiter? in
            state.statistics.nacked += 1
            if let waiter = state.consumers.popFirst() { return waiter }
            state.buffer.prepend(message)
            return nil
        }
        waiter?.continuation.resume(returning: [message])
    }

    func recordSettlement(_ outcome: SettlementOutcome, count: Int) {
        state.withLock { state in
            switch outcome {
            case .ack: state.statistics.acked += count
            case .reject: state.statistics.rejected += count
            case .nack: break  // counted by requeue
            }
        }
    }

    // MARK: Consuming

    /// Takes up to `maxMessages` ready messages, waiting for one; nil once `consumer` is stopped
    /// or the waiting task is cancelled.
    func dequeue(consumer: Int, maxMessages: Int) async -> [IncomingMessage]? {
        if let ready = state.withLock({ take(&$0, consumer: consumer, maxMessages: maxMessages) }) {
            resumeProducers(ready.producers)
            return ready.messages
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[IncomingMessage]?, Never>) in
                let ready = state.withLock { state -> (messages: [IncomingMessage]?, producers: [ProducerWaiter])? in
                    if Task.isCancelled { return (nil, []) }
                    if let ready = take(&state, consumer: consumer, maxMessages: maxMessages) {
                        return (ready.messages, ready.producers)
                    }
                    state.consumers.append(ConsumerWaiter(consumer: consumer, maxMessages: maxMessages, continuation: continuation))
                    return nil
                }
                if let ready {
                    resumeProducers(ready.producers)
                    continuation.resume(returning: ready.messages)
                }
            }
        } onCancel: {
            self.release(consumer: consumer)
        }
    }

    /// Stops `consumer`: its waiting and later dequeues return nil.
    func stop(consumer: Int) {
        let waiter = state.withLock { state -> ConsumerWaiter? in
            state.stoppedConsumers.insert(consumer)
            guard let index = state.consumers.firstIndex(where: { $0.consumer == consumer }) else { return nil }
            return state.consumers.remove(at: index)
        }
        waiter?.continuation.resume(returning: nil)
    }

    private func release(consumer: Int) {
        let waiter = state.withLock { state -> ConsumerWaiter? in
            guard let index = state.consumers.firstIndex(where: { $0.consumer == consumer }) else { return nil }
            return state.consumers.remove(at: index)
        }
        waiter?.continuation.resume(returning: nil)
    }

    /// Takes ready messages and refills the freed space from waiting producers. nil: nothing ready.
    private func take(
        _ state: inout State,
        consumer: Int,
        maxMessages: Int
    ) -> (messages: [IncomingMessage]?, producers: [ProducerWaiter])? {
        if state.stoppedConsumers.contains(consumer) { return (nil, []) }
        guard !state.buffer.isEmpty else { return nil }
        var messages: [IncomingMessage] = []
        messages.reserveCapacity(min(maxMessages, state.buffer.count))
        while messages.count < maxMessages, let message = state.buffer.popFirst() {
            messages.append(message)
        }
        var admitted: [ProducerWaiter] = []
        while state.buffer.count < capacity, let producer = state.producers.popFirst() {
            state.buffer.append(producer.message)
            state.statistics.enqueued += 1
            admitted.append(producer)
        }
        return (messages, admitted)
    }

    private func resumeProducers(_ producers: [ProducerWaiter]) {
        for producer in producers { producer.continuation.resume() }
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
    /// Deliveries nacked (each went back to the queue).
    public var nacked = 0
    /// Deliveries rejected (dropped; Courier logged each).
    public var rejected = 0
}
