import Synchronization

/// Replies matched to requests by a key, many requests in flight at once: the requester
/// registers its key before sending (``expect(_:)``), whoever receives replies hands each to
/// ``deliver(_:for:)`` (a client library's callback, a shared reply consumer), and the requester
/// waits with ``wait(for:)``. A reply for a key nobody expects (late, after a timeout, or stray)
/// is refused, so the receiver can log and settle it.
///
/// Each slot is an ``HandOffQueue`` of one element: the same waiting primitive as everywhere.
@_spi(BrokerModule) public final class CorrelatedReplies<Key: Hashable & Sendable, Reply: Sendable>: Sendable {
    private let slots = Mutex<[Key: HandOffQueue<Reply>]>([:])

    public init() {}

    /// Registers `key` before its request goes out, so a reply that arrives at once is kept.
    public func expect(_ key: Key) {
        slots.withLock { slots in
            if slots[key] == nil { slots[key] = HandOffQueue(capacity: 1) }
        }
    }

    /// Hands a reply to the request waiting for `key`; false if no request expects it (or it has
    /// its reply already).
    @discardableResult
    public func deliver(_ reply: Reply, for key: Key) -> Bool {
        guard let slot = slots.withLock({ $0[key] }) else { return false }
        return slot.offer(reply) == .enqueued
    }

    /// The reply for `key`, waiting for it; nil if the wait is cancelled or ``cancel(_:)`` ends
    /// it. The key is forgotten afterwards: a second reply is refused.
    public func wait(for key: Key) async -> Reply? {
        guard let slot = slots.withLock({ $0[key] }) else { return nil }
        defer { cancel(key) }
        return await slot.next()?.first
    }

    /// The reply for `key`, waiting at most `timeout` for it; nil if none came in time, the wait
    /// is cancelled or ``cancel(_:)`` ends it. The key is forgotten afterwards.
    public func wait(for key: Key, timeout: Duration) async -> Reply? {
        guard let slot = slots.withLock({ $0[key] }) else { return nil }
        defer { cancel(key) }
        return await slot.next(timeout: timeout)?.first
    }

    /// Forgets `key`: its waiter gets nil, a later reply is refused.
    public func cancel(_ key: Key) {
        slots.withLock { $0.removeValue(forKey: key) }?.finish(discardingElements: true)
    }

    /// Forgets every key (the connection closed): every waiter gets nil.
    public func cancelAll() {
        let all = slots.withLock { slots in
            defer { slots.removeAll() }
            return Array(slots.values)
        }
        for slot in all { slot.finish(discardingElements: true) }
    }

    /// How many requests wait for a reply.
    public var pendingCount: Int { slots.withLock { $0.count } }
}
