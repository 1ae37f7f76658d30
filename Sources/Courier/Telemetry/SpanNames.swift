import Synchronization

/// Span names ("process orders", "send orders"), kept for the few destinations a middleware saw
/// last: building one is a string concatenation and an allocation per message, while finding one
/// again compares two short strings. A service mostly publishes and consumes on a handful of
/// destinations; past `capacity` the oldest entry makes room, so the memory stays bounded whatever
/// names come (a wildcard subscriber's subjects).
final class SpanNames: Sendable {
    private struct Entry {
        var operation: String
        var destination: String
        var name: String
    }

    private struct State {
        var entries: [Entry] = []
        var oldest = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 8) {
        self.capacity = capacity
    }

    /// "`operation` `destination`", or `operation` alone without a destination (a temporary one).
    func name(_ operation: String, _ destination: String?) -> String {
        guard let destination else { return operation }
        if let known = state.withLock({ state in
            state.entries.first { $0.destination == destination && $0.operation == operation }?.name
        }) {
            return known
        }
        let name = operation + " " + destination
        state.withLock { state in
            let entry = Entry(operation: operation, destination: destination, name: name)
            if state.entries.count < capacity {
                state.entries.append(entry)
            } else {
                state.entries[state.oldest] = entry
                state.oldest = (state.oldest + 1) % capacity
            }
        }
        return name
    }
}
