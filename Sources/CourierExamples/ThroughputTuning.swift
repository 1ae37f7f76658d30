import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis

// README: "Throughput" — subscribers tuned as the saturation rows of `make bench` run them.
func throughputTuningExample() async throws {
    // Redis list: pop up to 100 at a time (BLMPOP … COUNT 100) into a small local buffer.
    let redis = try RedisBroker(url: "redis://127.0.0.1:6379")
    redis.subscriber(.list("events", prefetch: 100)) { (event: String, _) in _ = event }

    // NATS JetStream: pull 100 per request.
    let nats = try NatsBroker(url: "nats://127.0.0.1:4222")
    nats.subscriber(.jetStream("events.>", stream: "EVENTS", consumer: .pull("indexer", batchSize: 100))) { (event: String, _) in _ = event }

    // RabbitMQ: let the node send 256 deliveries ahead of a handler of concurrency 1; each is
    // still acked after it was handled.
    let rabbit = try RabbitBroker(url: "amqp://guest:guest@127.0.0.1:5672/")
    rabbit.subscriber(.queue(RabbitQueue("events"), prefetch: 256)) { (event: String, _) in _ = event }

    // Kafka: librdkafka fetches in batches already; maxBufferedRecords bounds what waits.
    let kafka = try KafkaBroker(url: "kafka://127.0.0.1:9092")
    kafka.subscriber(.topics("events", group: "indexer")) { (event: String, _) in _ = event }

    // Publishing: many tasks at once share each connection; a Redis or AMQP connection writes
    // what they send within one event-loop tick in one syscall.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for publisher in 0..<16 {
            group.addTask { try await rabbit.publish("event \(publisher)", to: "events") }
        }
        try await group.waitForAll()
    }
}
