import Courier
import NIOCore
import Synchronization

/// Settles one JetStream message by publishing to its ack subject: `+ACK`, `-NAK` (with an
/// optional delay), `+TERM`; `+WPI` marks it in progress without settling it.
final class NatsAcknowledger: Sendable {
    private struct WeakSettlement {
        weak var settlement: Settlement?
    }

    private let client: NatsClient
    private let ackSubject: String
    private let defaultNackDelay: Duration?
    private let nackDelay = Mutex<Duration?>(nil)
    private let settlementReference = Mutex(WeakSettlement())

    init(client: NatsClient, ackSubject: String, defaultNackDelay: Duration?) {
        self.client = client
        self.ackSubject = ackSubject
        self.defaultNackDelay = defaultNackDelay
    }

    /// The delivery's settlement; it keeps this acknowledger alive, not the other way round.
    func makeSettlement() -> Settlement {
        let settlement = Settlement { [self] outcome in try self.settle(outcome) }
        settlementReference.withLock { $0.settlement = settlement }
        return settlement
    }

    private func settle(_ outcome: SettlementOutcome) throws {
        let body: String
        switch outcome {
        case .ack:
            body = "+ACK"
        case .nack:
            if let delay = nackDelay.withLock({ $0 }) ?? defaultNackDelay {
                body = "-NAK {\"delay\":\(delay.nanoseconds)}"
            } else {
                body = "-NAK"
            }
        case .reject:
            body = "+TERM"
        }
        try client.publish(subject: ackSubject, reply: nil, headers: [:], body: ByteBuffer(string: body))
    }

    func inProgress() throws {
        try client.publish(subject: ackSubject, reply: nil, headers: [:], body: ByteBuffer(string: "+WPI"))
    }

    func nak(delay: Duration) async throws {
        nackDelay.withLock { $0 = delay }
        let settlement = settlementReference.withLock { $0.settlement }
        try await settlement?.settle(.nack)
    }
}
