import Courier
import CourierMemory
import CourierRedis
import InMemoryTracing
import MetricsTestKit
import Testing

/// `messaging.client.settled.messages` and `messaging.process.active_messages`, counted from
/// real deliveries.
@Suite("Health: settlement and in-flight metrics")
struct HealthSettlementMetricsTests {
    struct Boom: Error {}

    @Test("settlements by outcome and messages in flight, per subscriber (memory broker)")
    func memory() async throws {
        let metrics = TestMetrics()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: InMemoryTracer(), metricsFactory: metrics)])
        let entered = Inbox<String>()
        let gate = Gate()
        let finished = Inbox<String>()
        broker.subscriber("jobs") { (message: String, context) in
            defer { finished.put(message) }
            switch message {
            case "retry" where context.message.deliveryCount < 3:
                try await context.nack()
            case "bad":
                throw Boom()
            case "held":
                entered.put(message)
                try await gate.pass()
            default:
                break
            }
        }
        let base = [("messaging.system", "memory"), ("messaging.destination.name", "jobs")]
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish("held", to: "jobs")
            try await entered.wait(count: 1)
            // One message in the handler: one in flight.
            #expect(try metrics.expectMeter("messaging.process.active_messages", base).lastValue == 1)
            gate.open()
            try await broker.publish("retry", to: "jobs")
            try await broker.publish("bad", to: "jobs")
            try await broker.publish("fine", to: "jobs")
            // held, retry ×3 (two nacks, then the ack), bad, fine.
            try await finished.wait(count: 6)
        }
        func settled(_ outcome: String) -> Int64 {
            metrics.counterTotal(
                label: "messaging.client.settled.messages",
                dimensions: base + [("messaging.operation.name", outcome), ("messaging.operation.type", "settle")]
            )
        }
        #expect(settled("ack") == 3)
        #expect(settled("nack") == 2)
        #expect(settled("reject") == 1)
        let active = try metrics.expectMeter("messaging.process.active_messages", base)
        // The app drained: nothing in flight, after six deliveries in and out.
        #expect(active.lastValue == 0)
        #expect(active.values.max() == 1)
        #expect(active.values.count == 12)
    }

    @Test("settlements of a Redis stream group, with its consumer group as a dimension")
    func redisStreamGroup() async throws {
        let metrics = TestMetrics()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: InMemoryTracer(), metricsFactory: metrics)])
        let stream = RedisTestServer.unique("settled")
        let finished = Inbox<Int>()
        broker.subscriber(.stream(stream, group: "workers")) { (_: String, context) in
            defer { finished.put(context.message.deliveryCount) }
            if context.message.deliveryCount < 2 { try await context.nack() }
        }
        try await withRunningRedis(broker) {
            try await broker.publish("once", to: .stream(stream))
            try await finished.wait(count: 2)
        }
        let dimensions = [("messaging.system", "redis"), ("messaging.destination.name", stream), ("messaging.consumer.group.name", "workers")]
        #expect(metrics.counterTotal(label: "messaging.client.settled.messages", dimensions: dimensions + [("messaging.operation.name", "nack")]) == 1)
        #expect(metrics.counterTotal(label: "messaging.client.settled.messages", dimensions: dimensions + [("messaging.operation.name", "ack")]) == 1)
        #expect(try metrics.expectMeter("messaging.process.active_messages", dimensions).lastValue == 0)
    }
}
