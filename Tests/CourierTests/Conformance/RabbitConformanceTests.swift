@testable import CourierRabbit
import Courier
import CourierTesting
import Foundation
import Testing

/// RabbitMQ against the transport contract, on the suite's node: a queue through the default
/// exchange, acked, nacked with requeue, rejected.
@Suite("Conformance: RabbitMQ")
struct RabbitConformanceTests {
    typealias Check = TransportConformance<RabbitTransport>.Check

    static var url: String { ProcessInfo.processInfo.environment["COURIER_RABBIT_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/" }

    static let queues = TransportConformance<RabbitTransport>(
        capabilities: .init(isDurable: true, redeliversOnNack: true),
        makeBroker: { middlewares in try RabbitBroker(url: url, middlewares: middlewares) },
        makeChannel: { name in
            // Declared up front, as queues are where publishers publish first; kept when its
            // consumer leaves (no auto-delete), gone with the suite's node.
            let queue = RabbitQueue(name, durable: false)
            let admin = RabbitTransport(configuration: try RabbitConfiguration(url: url))
            try await admin.declareQueue(queue)
            await admin.close()
            return (source: .queue(queue), destination: .queue(name))
        }
    )

    @Test("queues", arguments: Check.allCases)
    func queues(_ check: Check) async throws {
        try await Self.queues.run(check)
    }
}
