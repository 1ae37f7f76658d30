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
/// nats.c calls ``offer(_:)`` on its own thread, which must never block, so the queue (the core's
/// ``AsyncBuffer``) is bounded instead: past the pending limits, in messages or bytes, a message
/// is dropped and counted as a slow consumer, as nats.c itself does with its own queue. The
/// subscriber's task takes messages with ``next()`` only when it can handle another, so the
/// queue only fills while handlers lag.
final class NatsInbound: Sendable {
    private struct Accounting {
        var queuedBytes = 0
        var dropping = false
        var dropped = 0
    }

    enum Offer {
        case accepted
        /// Dropped; `firstOfEpisode` is true for the first drop since the queue last had room.
        case dropped(firstOfEpisode: Bool)
    }

    let limits: NatsConfiguration.PendingLimits
    private let buffer: AsyncBuffer<NatsRawMessage>
    private let accounting = Mutex(Accounting())

    init(limits: NatsConfiguration.PendingLimits) {
        self.limits = limits
        self.buffer = AsyncBuffer(capacity: limits.messages)
    }

    /// Queues a message, or drops it when the queue is full. Never blocks.
    func offer(_ message: NatsRawMessage) -> Offer {
        accounting.withLock { accounting in
            let result: AsyncBuffer<NatsRawMessage>.OfferResult =
                accounting.queuedBytes + message.size > limits.bytes ? .full : buffer.offer(message)
            switch result {
            case .enqueued:
                accounting.queuedBytes += message.size
                return .accepted
            case .finished:
                return .accepted
            case .full:
                accounting.dropped += 1
                let first = !accounting.dropping
                accounting.dropping = true
                return .dropped(firstOfEpisode: first)
            }
        }
    }

    /// How many messages were dropped because the queue was full.
    var droppedCount: Int { accounting.withLock { $0.dropped } }

    /// The next message, waiting for one; nil once finished (or when the task is cancelled).
    func next() async -> NatsRawMessage? {
        guard let message = await buffer.next()?.first else { return nil }
        taken([message])
        return message
    }

    /// Up to `maxCount` messages already queued, without waiting.
    func takeQueued(upTo maxCount: Int) -> [NatsRawMessage] {
        let messages = buffer.take(upTo: maxCount) ?? []
        taken(messages)
        return messages
    }

    /// Ends intake: a waiting and every later ``next()`` return nil once the queue is empty…
    /// unless `discardQueued`, which empties it first and returns what it held.
    @discardableResult
    func finish(discardQueued: Bool = false) -> [NatsRawMessage] {
        let discarded = discardQueued ? takeQueued(upTo: .max) : []
        buffer.finish()
        return discarded
    }

    private func taken(_ messages: [NatsRawMessage]) {
        let bytes = messages.reduce(0) { $0 + $1.size }
        let empty = buffer.count == 0
        accounting.withLock { accounting in
            accounting.queuedBytes -= bytes
            if empty { accounting.dropping = false }
        }
    }
}
