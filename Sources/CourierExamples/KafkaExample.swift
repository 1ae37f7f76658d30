import Courier
import CourierKafka
import Foundation

// README: "Kafka".
func kafkaExample() async throws {
    let broker = try KafkaBroker(url: "kafka://127.0.0.1:9092", middlewares: [TelemetryMiddleware()])

    // A consumer group shares the topic's partitions between the instances of a service;
    // offsets are committed after the handler (the default, .ackFirst, commits before it).
    broker.subscriber(.topics("orders", group: "billing"), options: SubscriberOptions(ackPolicy: .nackOnError, maxConcurrency: 4)) {
        (order: Order, context) in
        let record = try context.message.kafka
        context.logger.info("order", metadata: ["partition": "\(record.partition)", "offset": "\(record.offset)", "key": "\(record.keyText ?? "-")"])
        return Receipt(orderID: order.id)
    }
    // A pattern, read from the oldest record; a rebalance listener.
    broker.subscriber(.pattern("^audit\\..*", group: "auditor", start: .beginning, onRebalance: { rebalance in
        print("\(rebalance.kind): \(rebalance.partitions)")
    })) { (line: String, context) in
        context.logger.info("audit", metadata: ["topic": "\(context.message.destination)"])
    }
    // Partitions by hand, from an offset; batches of up to 100 records of one partition.
    broker.subscriber(.partitions([KafkaTopicPartition(topic: "events", partition: 0)], start: .offset(1_000)), batch: BatchOptions(maxMessages: 100, maxWait: .milliseconds(50)))
        .handle { (batch: [String], context) in
            context.logger.info("batch", metadata: ["size": "\(batch.count)"])
        }
    // Request/reply: the requester's reply topic is in `reply_to`.
    broker.subscriber("double") { (number: Int, context) in
        number * 2
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await CourierApp(brokers: [broker]).runService() }
        await broker.waitUntilSubscribed()
        // Returns once the broker acknowledged the record (acks=all): the receipt has its place.
        let receipt = try await broker.publish(
            Order(id: 7, item: "tea"),
            to: "orders",
            headers: ["x-tenant": "acme"],
            options: KafkaPublishOptions(key: "customer-42")
        )
        _ = receipt?.kafka.map { "\($0.partition)/\($0.offset)" }
        // A key with no value: a tombstone, which log compaction reads as "delete".
        let deleted: Order? = nil
        try await broker.publish(deleted, to: "orders", options: KafkaPublishOptions(key: "customer-42"))
        // A batch with a key per record; a fire-and-forget publish (FastStream's no_confirm).
        try await broker.publishBatch([("a", KafkaPublishOptions(key: "1")), ("b", KafkaPublishOptions(key: "2"))], to: "events")
        try await broker.publish("metric", to: "metrics", options: KafkaPublishOptions(partition: 0, timestamp: Date(), waitsForConfirmation: false))
        let doubled = try await broker.request(21, to: "double", as: Int.self, timeout: .seconds(5))
        _ = doubled
        try await group.waitForAll()
    }
}

// README: "Kafka" (configuration).
func kafkaConfigurationExample() throws -> KafkaBroker {
    var configuration = try KafkaConfiguration(url: "kafka://kafka-1:9092,kafka-2:9092")
    configuration.properties = [
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "billing",
        "sasl.password": "secret",
    ]
    configuration.producerProperties = ["compression.type": "zstd", "linger.ms": "5", "enable.idempotence": "true"]
    configuration.consumerProperties = ["session.timeout.ms": "10000"]
    configuration.deliveryTimeout = .seconds(10)
    configuration.maxBufferedRecords = 5_000
    return KafkaBroker(configuration: configuration, middlewares: [TelemetryMiddleware()])
}
