import Synchronization

/// How a delivery was settled.
public enum SettlementOutcome: String, Sendable, Hashable {
    /// Processed: the broker may forget it.
    case ack
    /// Not processed: the broker should deliver it again.
    case nack
    /// Not processable: the broker should drop or dead-letter it, never redeliver it.
    case reject
}

/// Settles one delivery exactly once: the first ack, nack or reject wins, later ones are ignored.
///
/// A transport creates one per delivery with the actions its protocol offers (an `XACK`, a
/// `basic.nack`, a JetStream `term`…); the acknowledgement policy and `context.ack()` call it.
public final class Settlement: Sendable {
    /// The transport's way to carry out an outcome.
    public typealias Action = @Sendable (SettlementOutcome) async throws -> Void

    private let action: Action
    private let state = Mutex<SettlementOutcome?>(nil)
    /// Whether the delivery's failure was already logged (inside the process span, where the log
    /// line carries the trace id), so the outer ack policy does not log it again.
    private let failureLogged = Atomic<Bool>(false)

    public init(_ action: @escaping Action) {
        self.action = action
    }

    /// A delivery that needs no settling (at-most-once transports).
    public static var none: Settlement { Settlement { _ in } }

    /// The outcome, once settled.
    public var outcome: SettlementOutcome? {
        state.withLock { $0 }
    }

    /// Marks the delivery's failure as logged; returns whether it was already.
    package func markFailureLogged() -> Bool {
        failureLogged.exchange(true, ordering: .relaxed)
    }

    /// Settles the delivery, unless it already was. Returns whether this call settled it.
    @discardableResult
    public func settle(_ outcome: SettlementOutcome) async throws -> Bool {
        let first = state.withLock { current in
            guard current == nil else { return false }
            current = outcome
            return true
        }
        guard first else { return false }
        try await action(outcome)
        return true
    }
}
