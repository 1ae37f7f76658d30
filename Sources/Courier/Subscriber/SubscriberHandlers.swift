import Synchronization

/// The handlers of one subscription and their filters, in the order they were declared.
///
/// Shared by the copies of a ``SubscriberBuilder``: each `handle` adds a handler here, and the
/// first one registers the subscription, whose deliveries ``dispatch(_:)`` hands to the first
/// handler whose filter takes the message.
final class SubscriberHandlers: Sendable {
    private struct Entry: Sendable {
        var filter: MessageFilter?
        var handle: ConsumeNext
        var declaration: HandlerDeclaration
    }

    private let entries = Mutex<[Entry]>([])

    /// Adds a handler; true for the first one, which the caller registers as the subscription.
    func add(filter: MessageFilter?, declaration: HandlerDeclaration, _ handle: @escaping ConsumeNext) -> Bool {
        entries.withLock { entries in
            entries.append(Entry(filter: filter, handle: handle, declaration: declaration))
            return entries.count == 1
        }
    }

    /// The handlers' declarations, in order.
    @Sendable func declarations() -> [HandlerDeclaration] {
        entries.withLock { $0.map(\.declaration) }
    }

    /// Runs the delivery's handler: the only one, or the first whose filter takes the message.
    @Sendable func dispatch(_ context: MessageContext) async throws {
        // Filters are the application's code: they run outside the lock.
        let entries = self.entries.withLock { $0 }
        let handle = entries.count == 1 && entries[0].filter == nil
            ? entries[0].handle
            : entries.first { $0.filter?(context.message) ?? true }?.handle
        guard let handle else {
            throw CourierError(
                .noMatchingHandler,
                "no handler of the subscriber of '\(context.destination.name)' takes this message (every filter refused it)"
            )
        }
        try await handle(context)
    }
}
