import Courier
import CourierNATS
import CourierRedis
import CourierTesting
import InMemoryTracing
import Testing

/// CourierTesting's helpers for application tests: handlers declared with a real broker's typed
/// destinations, run in memory.
@Suite("TestBroker")
struct TestBrokerTests {
    struct OutOfStock: Error {}

    static func routes<T: BrokerTransport>(_ broker: Broker<T>) where T.Source == RedisSource, T.Destination == RedisDestination {
        broker.subscriber(.list("orders")).publisher(.stream("invoices")).handle { (order: Order, _) -> String in
            guard order.item != "unobtainium" else { throw OutOfStock() }
            return "invoice for \(order.id)"
        }
        broker.subscriber(.channel("double")) { (number: Int, _) in number * 2 }
    }

    @Test("process: what the handler published, or the error it threw; publications recorded; request/reply")
    func processAndInspect() async throws {
        let tracer = InMemoryTracer()
        let broker = TestBroker<RedisTransport>(middlewares: [TelemetryMiddleware(tracer: tracer)])
        Self.routes(broker)
        try await broker.withRunning {
            let published = try await broker.process(Order(id: 1, item: "tea"), to: .list("orders"))
            #expect(published.count == 1)
            #expect(published.first?.destination.name == "invoices")
            #expect(try published.first?.decode(as: String.self) == "invoice for 1")
            #expect((published.first?.destination as? RedisDestination)?.kind == .stream(maxLength: nil), "the destination keeps its Redis type")

            await #expect(throws: OutOfStock.self) {
                try await broker.process(Order(id: 2, item: "unobtainium"), to: .list("orders"))
            }
            let doubled = try await broker.request(21, to: .channel("double")).decode(as: Int.self)
            #expect(doubled == 42)
        }
        #expect(broker.transport.published(to: "invoices").count == 1)
        #expect(broker.transport.published(to: "orders").count == 2)
        #expect(tracer.finishedSpans.contains { $0.operationName == "process orders" })
        #expect(tracer.finishedSpans.contains { $0.operationName == "send invoices" })
    }

    @Test("a NATS service's JetStream routes run unchanged; Collector waits with a deadline")
    func jetStreamRoutes() async throws {
        let broker = TestBroker<NatsTransport>()
        let seen = Collector<Int>()
        broker.subscriber(.jetStream("orders.created", stream: "ORDERS", consumer: .pull("billing"))) { (id: Int, _) in seen.put(id) }
        try await broker.withRunning {
            try await broker.publish(7, to: .jetStream("orders.created"), options: NatsPublishOptions(deduplicationID: "7"))
            #expect(try await seen.wait(count: 1) == [7])
        }
        await #expect(throws: CollectorTimeout.self) { try await seen.wait(count: 2, timeout: .milliseconds(50)) }
    }
}
