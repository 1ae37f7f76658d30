import NIOCore
import Synchronization

/// The deliveries waiting behind the one in progress, per ordering key.
final class OrderingLanes<Item: Sendable>: Sendable {
    private let lanes = Mutex<[String: CircularBuffer<Item>]>([:])

    /// Whether `item` starts its lane (the caller runs it, then asks ``next(in:)``); false if it
    /// queued behind the lane's running item.
    func enter(_ key: String, _ item: Item) -> Bool {
        lanes.withLock { lanes in
            if lanes[key] != nil {
                lanes[key]!.append(item)
                return false
            }
            lanes[key] = CircularBuffer()
            return true
        }
    }

    /// The lane's next item, or nil, closing the lane, when none waits.
    func next(in key: String) -> Item? {
        lanes.withLock { lanes in
            if let item = lanes[key]?.popFirst() { return item }
            lanes[key] = nil
            return nil
        }
    }
}
