import Courier
import CourierMemory
import CourierTesting
import Testing

/// The in-memory broker against the transport contract.
@Suite("Conformance: memory")
struct MemoryConformanceTests {
    typealias Check = TransportConformance<MemoryTransport>.Check

    /// One transport for the whole suite: its queues outlive a broker, as a server's would.
    static let transport = MemoryTransport()
    static let suite = TransportConformance<MemoryTransport>(
        capabilities: .init(isDurable: true, redeliversOnNack: true),
        makeBroker: { middlewares in Broker(transport: transport, middlewares: middlewares) },
        makeChannel: { name in (source: MemoryDestination(destination: name), destination: NamedDestination(name)) }
    )

    @Test(arguments: Check.allCases)
    func conformance(_ check: Check) async throws {
        try await Self.suite.run(check)
    }
}
