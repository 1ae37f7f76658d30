@_spi(BrokerModule) import Courier
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
/// ``HandOffQueue``) is bounded instead: past the pending limits, in messages or bytes, a message
/// is dropped and counted as a slow consumer, as nats.c itself does with its own queue. The
/// subscriber's task takes messages with ``next()`` only when it can handle another, so the
/// queue only fills while handlers lag.
///
/// The hand-over is batched: an offer takes the buffer's one lock and wakes the subscriber only
/// if it waits; the subscriber, once awake, takes everything queued (up to ``takeLimit``) in one
/// go and hands it out from ``ready`` without touching the shared buffer again. So a burst costs
/// one wake-up, not one per message. The messages in ``ready`` (at most ``takeLimit``) are held
/// beyond the pending limits, as nats.c's own delivery thread holds the message it is handing over.
///
/// One task consumes (the subscriber's loop, a reply's waiter): ``ready`` is under a lock only so
/// that the type is safe to share, and concurrent consumers would each get every message once,
/// though not necessarily in order.
final class NatsInbound: Sendable {
    enum Offer {
        case accepted
        /// Dropped; `firstOfEpisode` is true for the first drop since the queue last had room.
        case dropped(firstOfEpisode: Bool)
    }

    let limits: NatsConfiguration.PendingLimits
    private let buffer: HandOffQueue<NatsRawMessage>
    /// Bytes in `buffer`. Atomics rather than a second lock: only nats.c's delivery thread for
    /// this subscription offers (it calls back one message at a time), so the check-then-add
    /// in ``offer(_:)`` has no competing producer; a take racing it only makes room.
    private let queuedBytes = Atomic<Int>(0)
    private let dropping = Atomic<Bool>(false)
    private let dropped = Atomic<Int>(0)
    /// Taken from `buffer` in one batch, not handed out yet.
    private let ready = Mutex<CircularBuffer<NatsRawMessage>>(CircularBuffer())
    /// The most messages taken from `buffer` at once.
    private let takeLimit: Int

    init(limits: NatsConfiguration.PendingLimits) {
        self.limits = limits
        self.buffer = HandOffQueue(capacity: limits.messages)
        self.takeLimit = max(1, min(64, limits.messages))
    }

    /// Queues a message, or drops it when the queue is full. Never blocks.
    func offer(_ message: NatsRawMessage) -> Offer {
        let size = message.size
        let result: HandOffQueue<NatsRawMessage>.OfferResult =
            queuedBytes.load(ordering: .relaxed) + size > limits.bytes ? .full : buffer.offer(message)
        switch result {
        case .enqueued:
            queuedBytes.add(size, ordering: .relaxed)
            return .accepted
        case .finished:
            return .accepted
        case .full:
            dropped.add(1, ordering: .relaxed)
            return .dropped(firstOfEpisode: !dropping.exchange(true, ordering: .relaxed))
        }
    }

    /// How many messages were dropped because the queue was full.
    var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// The next message, waiting for one; nil once finished (or when the task is cancelled).
    func next() async -> NatsRawMessage? {
        if let message = ready.withLock({ $0.popFirst() }) { return message }
        guard var messages = await buffer.next(upTo: takeLimit) else { return nil }
        taken(messages, requested: takeLimit)
        let first = messages.removeFirst()
        if !messages.isEmpty {
            ready.withLock { ready in ready.append(contentsOf: messages) }
        }
        return first
    }

    /// What ``next(timeout:)`` found.
    enum Waited {
        case message(NatsRawMessage)
        /// Nothing came within the time.
        case timedOut
        /// Intake ended (or the task was cancelled).
        case finished
    }

    /// The next message, waiting at most `timeout` for one.
    func next(timeout: Duration) async -> Waited {
        if let message = ready.withLock({ $0.popFirst() }) { return .message(message) }
        guard var messages = await buffer.next(upTo: takeLimit, timeout: timeout) else {
            return buffer.isFinished || Task.isCancelled ? .finished : .timedOut
        }
        taken(messages, requested: takeLimit)
        let first = messages.removeFirst()
        if !messages.isEmpty {
            ready.withLock { ready in ready.append(contentsOf: messages) }
        }
        return .message(first)
    }

    /// Up to `maxCount` messages already queued, without waiting.
    func takeQueued(upTo maxCount: Int) -> [NatsRawMessage] {
        var messages: [NatsRawMessage] = ready.withLock { ready in
            var messages: [NatsRawMessage] = []
            while messages.count < maxCount, let message = ready.popFirst() { messages.append(message) }
            return messages
        }
        if messages.count < maxCount, let more = buffer.take(upTo: maxCount - messages.count) {
            taken(more, requested: maxCount - messages.count)
            messages += more
        }
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

    private func taken(_ messages: [NatsRawMessage], requested: Int) {
        var bytes = 0
        for message in messages { bytes += message.size }
        queuedBytes.subtract(bytes, ordering: .relaxed)
        // Fewer than asked for: the buffer was emptied, so a drop from now on starts an episode.
        if messages.count < requested || buffer.count == 0 { dropping.store(false, ordering: .relaxed) }
    }
}
