@testable import CourierKafka
import Courier
import CourierTesting
import Testing

/// Kafka against the transport contract, on the suite's tansu: a topic of one partition (so a
/// batch keeps its order), read without a group from the beginning, so a later subscriber reads
/// what an earlier one left (durable); a nack seeks back and redelivers.
@Suite("Conformance: Kafka")
struct KafkaConformanceTests {
    typealias Check = TransportConformance<KafkaTransport>.Check

    static let topics = TransportConformance<KafkaTransport>(
        capabilities: .init(isDurable: true, redeliversOnNack: true),
        makeBroker: { middlewares in KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: middlewares) },
        makeChannel: { name in
            let topic = name.replacingOccurrences(of: ".", with: "-")
            let admin = KafkaTransport(configuration: try KafkaTestServer.configuration())
            try await admin.createTopic(topic, partitions: 1)
            await admin.close()
            return (source: .topics(topic, start: .beginning), destination: NamedDestination(topic))
        }
    )

    @Test("topics", arguments: Check.allCases)
    func topics(_ check: Check) async throws {
        try await Self.topics.run(check)
    }
}
