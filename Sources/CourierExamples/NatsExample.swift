import Courier
import CourierNATS
import NIOCore

// README: "NATS".
func natsExample() async throws {
    let broker = try NatsBroker(url: "nats://127.0.0.1:4222", middlewares: [TelemetryMiddleware()])

    // Core NATS: a subject with a capture and a wildcard, a queue group, a request handler.
    broker.subscriber(.subject("logs.{service}.*")) { (line: String, context) in
        let service = try context.message.nats.path["service"] ?? "-"
        context.logger.info("log line", metadata: ["service": "\(service)"])
    }
    broker.subscriber(.subject("jobs", queue: "workers")).publisher(.jetStream("orders.created")).handle { (job: Order, context) in
        job
    }
    broker.subscriber("double") { (number: Int, context) in
        number * 2
    }

    // JetStream: a stream declared by its subscriber, a durable pull consumer.
    let orders = NatsStream("ORDERS", subjects: ["orders.>"], storage: .file, maxAge: .seconds(7 * 24 * 3600))
    var billing = NatsConsumer.pull("billing", batchSize: 32)
    billing.nackDelay = .seconds(5)
    broker.subscriber(.jetStream("orders.created", stream: orders, consumer: billing), options: SubscriberOptions(ackPolicy: .nackOnError)) {
        (order: Order, context) in
        if let jetStream = try context.message.nats.jetStream {
            context.logger.info("order", metadata: ["seq": "\(jetStream.streamSequence)", "delivery": "\(jetStream.deliveryCount)"])
        }
        try await context.message.nats.inProgress()   // more time before the ack wait runs out
        return Receipt(orderID: order.id)
    }
    broker.subscriber(.jetStream("orders.created", stream: "ORDERS", consumer: .pull("audit", batchSize: 100)), batch: BatchOptions(maxMessages: 100))
        .handle { (batch: [Order], context) in
            context.logger.info("audit batch", metadata: ["size": "\(batch.count)"])
        }

    // Key-value: every change to the keys of a bucket (no trace context: each is a trace of its own).
    broker.subscriber(.keyValue(bucket: "feature-flags")) { (value: String, context) in
        guard let entry = try context.message.nats.keyValue else { return }
        context.logger.info("flag", metadata: ["key": "\(entry.key)", "op": "\(entry.operation.rawValue)", "value": "\(value)"])
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await CourierApp(brokers: [broker]).runService() }
        await broker.waitUntilSubscribed()
        try await broker.publish(Order(id: 7, item: "tea"), to: .subject("jobs"), headers: ["x-tenant": "acme"])
        try await broker.publish(Order(id: 8, item: "cake"), to: .jetStream("orders.created", stream: "ORDERS"))
        let doubled = try await broker.request(21, to: .subject("double"), as: Int.self, timeout: .seconds(1))
        _ = doubled
        // A repeat of the same id within the duplicate window is stored once; the receipt has the PubAck.
        let receipt = try await broker.publish(
            Order(id: 9, item: "pie"),
            to: .jetStream("orders.created"),
            options: NatsPublishOptions(deduplicationID: "order-9")
        )
        _ = receipt?.nats?.duplicate
        try await broker.putValue(ByteBuffer(string: "on"), forKey: "dark-mode", inBucket: "feature-flags")
        try await group.waitForAll()
    }
}

// README: "NATS" (configuration).
func natsConfigurationExample() throws -> NatsBroker {
    var configuration = try NatsConfiguration(url: "nats://app:secret@nats-1:4222,nats://app:secret@nats-2:4222")
    configuration.pendingLimits = NatsConfiguration.PendingLimits(messages: 10_000, bytes: 32 << 20)
    configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(500), maximumDelay: .seconds(10))
    configuration.drainTimeout = .seconds(30)
    return NatsBroker(configuration: configuration, middlewares: [TelemetryMiddleware()])
}
