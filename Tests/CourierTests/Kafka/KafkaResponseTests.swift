import Courier
import CourierKafka
import Testing

/// The application API against a real Kafka-compatible server: a handler's `Response` carries the
/// broker's options (a record key) and headers onward; a dynamic subscription reads a topic.
@Suite("Kafka: responses with options, dynamic subscriptions")
struct KafkaResponseTests {
    @Test("a Response's Kafka key and headers reach the record its publisher sends")
    func responseOptions() async throws {
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let orders = KafkaTestServer.unique("orders")
        let billed = KafkaTestServer.unique("billed")
        let records = Inbox<(key: String?, header: String?, body: String)>()
        broker.subscriber(.topics(orders, start: .beginning)).publisher(billed).handle { (customer: String, _) in
            Response("bill for \(customer)", headers: ["x-billing": "v2"], options: KafkaPublishOptions(key: customer))
        }
        broker.subscriber(.topics(billed, start: .beginning)) { (body: String, context: MessageContext) in
            records.put((try context.message.kafka.keyText, context.message.headers["x-billing"], body))
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("acme", to: orders)
            _ = try await records.wait(count: 1, timeout: .seconds(30))
        }
        let record = try #require(records.values.first)
        #expect(record.key == "acme")
        #expect(record.header == "v2")
        #expect(record.body == "bill for acme")
    }

    @Test("a dynamic subscription reads a topic while the broker runs, one message with a timeout")
    func dynamicSubscription() async throws {
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let topic = KafkaTestServer.unique("dynamic")
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let subscription = try await broker.subscription(to: .topics(topic, start: .beginning))
            try await broker.publish("first", to: topic)
            let first = try #require(try await subscription.next(timeout: .seconds(30)))
            #expect(try first.message.decode(as: String.self) == "first")
            #expect(try first.message.kafka.offset == 0)
            await subscription.stop()
            let afterStop = try await subscription.next()
            #expect(afterStop == nil)
        }
    }
}
