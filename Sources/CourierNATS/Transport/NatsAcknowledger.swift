import Courier
import NIOCore

/// Settles one JetStream message by publishing to its ack subject: `+ACK`, `-NAK` (with the
/// settlement's delay, or the consumer's), `+TERM`; `+WPI` marks it in progress without settling it.
final class NatsAcknowledger: Sendable {
    private let client: NatsClient
    private let ackSubject: String
    private let defaultNackDelay: Duration?

    init(client: NatsClient, ackSubject: String, defaultNackDelay: Duration?) {
        self.client = client
        self.ackSubject = ackSubject
        self.defaultNackDelay = defaultNackDelay
    }

    /// The delivery's settlement; it keeps this acknowledger alive, not the other way round.
    func makeSettlement() -> Settlement {
        Settlement { [self] request in try self.settle(request) }
    }

    private func settle(_ request: Settlement.Request) throws {
        let body: String
        if request.outcome == .ack {
            body = "+ACK"
        } else if request.redelivers {
            if let delay = request.delay ?? defaultNackDelay {
                body = "-NAK {\"delay\":\(delay.wholeNanoseconds)}"
            } else {
                body = "-NAK"
            }
        } else {
            body = "+TERM"
        }
        try client.publish(subject: ackSubject, reply: nil, headers: [:], body: ByteBuffer(string: body))
    }

    func inProgress() throws {
        try client.publish(subject: ackSubject, reply: nil, headers: [:], body: ByteBuffer(string: "+WPI"))
    }
}
