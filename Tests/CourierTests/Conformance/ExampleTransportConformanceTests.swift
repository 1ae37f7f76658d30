@testable import CourierExamples
import Courier
import CourierTesting
import Testing

/// The README's example transport ("Writing a broker module") passes the same conformance suite
/// as the real ones: the documentation shows a transport that works.
@Suite("Conformance: the README's example transport")
struct ExampleTransportConformanceTests {
    typealias Check = TransportConformance<LogTransport>.Check

    // A transport per broker: its run loop and close() are that broker's.
    static let suite = TransportConformance<LogTransport>(
        capabilities: .init(isDurable: false, redeliversOnNack: false),
        makeBroker: { middlewares in Broker(transport: LogTransport(), middlewares: middlewares) },
        makeChannel: { name in (source: LogSource(destination: name), destination: .topic(name)) }
    )

    @Test(arguments: Check.allCases)
    func conformance(_ check: Check) async throws {
        try await Self.suite.run(check)
    }

    @Test("receipts carry the partition and offset; the key picks the partition")
    func receipts() async throws {
        let broker = Broker(transport: LogTransport())
        let first = try #require(try await broker.publish("a", to: .topic("orders"), options: LogPublishOptions(key: "k"))?.details as? LogPosition)
        let second = try #require(try await broker.publish("b", to: .topic("orders"), options: LogPublishOptions(key: "k"))?.details as? LogPosition)
        #expect(second.partition == first.partition)
        #expect(second.offset == first.offset + 1)
    }
}
