import Courier
import CourierRedis
import Testing

/// `context.message.deliveryCount` on Redis stream groups comes from the group's pending entries
/// list, so the README's retry advice (`if context.message.deliveryCount > 3`) works there.
@Suite("Redis stream groups: delivery count")
struct RedisDeliveryCountTests {
    @Test("a stream-group message nacked again and again is delivered with counts 1, 2, 3, 4, then given up")
    func countsRedeliveries() async throws {
        let broker = try RedisBroker(url: RedisTestServer.url)
        let stream = RedisTestServer.unique("delivery-count")
        let counts = Inbox<Int>()
        broker.subscriber(.stream(stream, group: "retries"), options: SubscriberOptions(ackPolicy: .manual)) { (_: String, context) in
            counts.put(context.message.deliveryCount)
            // The README's advice: give up after three tries.
            if context.message.deliveryCount > 3 { try await context.reject() } else { try await context.nack() }
        }
        try await withRunningRedis(broker) {
            try await broker.publish("flaky", to: .stream(stream))
            try await counts.wait(count: 4)
        }
        #expect(counts.values == [1, 2, 3, 4])
        // Rejected: left pending (visible to XPENDING), never read again by this consumer.
        let connection = try await RedisTestServer.connection()
        let pending = try await connection.send(RedisCommand("XPENDING", [.string(stream), "retries"]))
        #expect(pending.elements?.first?.integer == 1)
        await connection.close()
    }
}
