@testable import CourierNATS
import Courier
import CourierTesting
import Testing

/// NATS against the transport contract: core subjects (at most once) and JetStream pull
/// consumers (durable, redelivered on nack), on the suite's nats-server.
@Suite("Conformance: NATS")
struct NatsConformanceTests {
    typealias Check = TransportConformance<NatsTransport>.Check

    static let core = TransportConformance<NatsTransport>(
        capabilities: .init(isDurable: false, redeliversOnNack: false),
        makeBroker: { middlewares in try NatsBroker(url: NatsTestServer.url, middlewares: middlewares) },
        makeChannel: { name in (source: .subject(name), destination: .subject(name)) }
    )

    static let jetStream = TransportConformance<NatsTransport>(
        capabilities: .init(isDurable: true, redeliversOnNack: true),
        makeBroker: { middlewares in try NatsBroker(url: NatsTestServer.url, middlewares: middlewares) },
        makeChannel: { name in
            let stream = "CONFORMANCE_" + name.split(separator: ".").last!.uppercased().replacingOccurrences(of: "-", with: "_")
            let admin = try NatsTestServer.admin()
            try await admin.declareStream(NatsStream(stream, subjects: [name], storage: .memory))
            await admin.close()
            return (source: .jetStream(name, stream: stream, consumer: .pull("conformance")), destination: .jetStream(name))
        }
    )

    @Test("core subjects", arguments: Check.allCases)
    func core(_ check: Check) async throws {
        try await Self.core.run(check)
    }

    @Test("JetStream", arguments: Check.allCases)
    func jetStream(_ check: Check) async throws {
        try await Self.jetStream.run(check)
    }
}
