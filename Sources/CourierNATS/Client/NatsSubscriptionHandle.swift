import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

/// A nats.c pointer moved to the thread that runs a blocking call.
///
/// Safe because nats.c's connection and subscription objects are documented as thread-safe,
/// and the owner keeps the object alive until the call has returned.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// One nats.c subscription.
final class NatsSubscriptionHandle: Sendable {
    private let subscription: UncheckedPointer

    init(_ subscription: UncheckedPointer) {
        self.subscription = subscription
    }

    deinit {
        natsSubscription_Destroy(subscription.pointer)
    }

    /// Unsubscribes: nats.c delivers nothing more (what it had queued is dropped).
    func unsubscribe() {
        _ = natsSubscription_Unsubscribe(subscription.pointer)
    }

    /// Unsubscribes after the messages nats.c has already queued were handed over; false when
    /// nats.c cannot drain (the connection is down), and nothing more will be handed over.
    func drain() -> Bool {
        if natsSubscription_Drain(subscription.pointer) == NATS_OK { return true }
        _ = natsSubscription_Unsubscribe(subscription.pointer)
        return false
    }

    /// Messages nats.c itself dropped as a slow consumer.
    var droppedByClient: Int {
        var dropped: Int64 = 0
        _ = natsSubscription_GetDropped(subscription.pointer, &dropped)
        return Int(dropped)
    }
}
