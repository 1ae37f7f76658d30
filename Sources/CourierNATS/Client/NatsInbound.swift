import Courier
import NIOCore
import Synchronization

/// A message as nats.c delivered it, copied out of C memory before nats.c frees it.
package struct NatsRawMessage: Sendable {
    var subject: String
    var reply: String?
    /// The headers, as nats.c read them and ``repairingEmptyValues(_:)`` repaired them.
    package var headers: MessageHeaders
    /// Set when nats.c could not parse the header block.
    package var headerError: NatsError?
    /// The status code of a status message (`503` no responders, `404`/`408` pull end), else nil.
    package var status: Int?
    /// The payload.
    package var body: ByteBuffer

    var size: Int { body.readableBytes }
}

/// The hand-off from nats.c's delivery thread to the subscriber's task.
///
/// nats.c calls ``offer(_:)`` on its own thread, which must never block, so the queue is bounded
/// instead: past the pending limits a message is dropped and counted as a slow consumer, as
/// nats.c itself does with its own queue. The subscriber's task takes messages with ``next()``
/// only when it can handle another, so the queue only fills while handlers lag.
final class NatsInbound: Sendable {
    private struct State {
        var queue = CircularBuffer<NatsRawMessage>()
        var queuedBytes = 0
        var waiter: (id: UInt64, continuation: CheckedContinuation<NatsRawMessage?, Never>)?
        var nextWaiterID: UInt64 = 0
        var finished = false
        var dropping = false
        var dropped = 0
    }

    enum Offer {
        case accepted
        /// Dropped; `firstOfEpisode` is true for the first drop since the queue last had room.
        case dropped(firstOfEpisode: Bool)
    }

    let limits: NatsConfiguration.PendingLimits
    private let state = Mutex(State())

    init(limits: NatsConfiguration.PendingLimits) {
        self.limits = limits
    }

    /// Queues a message, or drops it when the queue is full. Never blocks.
    func offer(_ message: NatsRawMessage) -> Offer {
        let (waiter, outcome) = state.withLock { state -> (CheckedContinuation<NatsRawMessage?, Never>?, Offer) in
            if state.finished { return (nil, .accepted) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter.continuation, .accepted)
            }
            if state.queue.count >= limits.messages || state.queuedBytes + message.size > limits.bytes {
                state.dropped += 1
                let first = !state.dropping
                state.dropping = true
                return (nil, .dropped(firstOfEpisode: first))
            }
            state.queue.append(message)
            state.queuedBytes += message.size
            return (nil, .accepted)
        }
        waiter?.resume(returning: message)
        return outcome
    }

    /// How many messages were dropped because the queue was full.
    var droppedCount: Int { state.withLock { $0.dropped } }

    /// The next message, waiting for one; nil once finished (or when the task is cancelled).
    func next() async -> NatsRawMessage? {
        if let message = takeQueued() { return message }
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: NatsRawMessage?? = state.withLock { state in
                    if let message = state.queue.popFirst() {
                        state.queuedBytes -= message.size
                        return .some(message)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = (id, continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<NatsRawMessage?, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Up to `maxCount` messages already queued, without waiting.
    func takeQueued(upTo maxCount: Int) -> [NatsRawMessage] {
        state.withLock { state in
            var messages: [NatsRawMessage] = []
            while messages.count < maxCount, let message = state.queue.popFirst() {
                state.queuedBytes -= message.size
                messages.append(message)
            }
            if state.queue.isEmpty { state.dropping = false }
            return messages
        }
    }

    /// Ends intake: a waiting and every later ``next()`` return nil once the queue is empty…
    /// unless `discardQueued`, which empties it first and returns what it held.
    @discardableResult
    func finish(discardQueued: Bool = false) -> [NatsRawMessage] {
        let (waiter, discarded) = state.withLock { state -> (CheckedContinuation<NatsRawMessage?, Never>?, [NatsRawMessage]) in
            state.finished = true
            var discarded: [NatsRawMessage] = []
            if discardQueued {
                discarded = Array(state.queue)
                state.queue.removeAll()
                state.queuedBytes = 0
            }
            let waiter = state.waiter
            state.waiter = nil
            return (waiter?.continuation, discarded)
        }
        waiter?.resume(returning: nil)
        return discarded
    }

    private func takeQueued() -> NatsRawMessage? {
        state.withLock { state in
            guard let message = state.queue.popFirst() else {
                state.dropping = false
                return nil
            }
            state.queuedBytes -= message.size
            return message
        }
    }
}
