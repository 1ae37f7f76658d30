import Synchronization

/// Settles one delivery exactly once: the first ack, nack or reject wins, later ones are ignored.
///
/// A transport creates one per delivery with the actions its protocol offers (an `XACK`, a
/// `basic.nack`, a JetStream `term`…); the acknowledgement policy and `context.ack()` call it.
public final class Settlement: Sendable {
    /// An outcome with the parameters a broker may honour.
    public struct Request: Sendable, Hashable {
        /// Ack, nack or reject.
        public var outcome: SettlementOutcome
        /// For a nack or a reject: whether the broker should deliver the message again
        /// (RabbitMQ's `requeue`). Nil leaves it to the transport: a nack redelivers, a reject
        /// drops or dead-letters.
        public var requeue: Bool?
        /// For a nack: how long the broker should wait before delivering it again (a JetStream
        /// `-NAK` delay; a transport without delayed redelivery redelivers at once).
        public var delay: Duration?

        public init(_ outcome: SettlementOutcome, requeue: Bool? = nil, delay: Duration? = nil) {
            self.outcome = outcome
            self.requeue = requeue
            self.delay = delay
        }

        /// Whether the message should come again: a nack unless `requeue` is false, a reject
        /// only when `requeue` is true.
        public var redelivers: Bool {
            switch outcome {
            case .ack: false
            case .nack: requeue ?? true
            case .reject: requeue ?? false
            }
        }
    }

    /// The transport's way to carry out a settlement.
    public typealias Action = @Sendable (Request) async throws -> Void

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
        try await settle(Request(outcome))
    }

    /// Settles the delivery with parameters, unless it already was. Returns whether this call settled it.
    @discardableResult
    public func settle(_ request: Request) async throws -> Bool {
        let first = state.withLock { current in
            guard current == nil else { return false }
            current = request.outcome
            return true
        }
        guard first else { return false }
        try await action(request)
        return true
    }
}
