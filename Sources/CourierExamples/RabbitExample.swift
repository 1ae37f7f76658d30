import Courier
import CourierRabbit

// README: "RabbitMQ".
func rabbitExample() async throws {
    let broker = try RabbitBroker(url: "amqp://guest:guest@127.0.0.1:5672/", middlewares: [TelemetryMiddleware()])

    // A durable queue on the default exchange (FastStream declares it the same way).
    broker.subscriber("jobs") { (job: Order, context) in
        context.logger.info("job", metadata: ["routing_key": "\(context.message.rabbit?.routingKey ?? "-")"])
    }
    // A queue bound to a topic exchange with a pattern; dead-lettered when rejected.
    let audit = RabbitQueue("audit", arguments: ["x-dead-letter-exchange": .string("audit.dlx")])
    broker.subscriber(.queue(audit, exchange: RabbitExchange("orders", kind: .topic), routingKey: "orders.*"),
        options: SubscriberOptions(ackPolicy: .rejectOnError, maxConcurrency: 8)) { (order: Order, context) in
        context.logger.info("order", metadata: ["delivery": "\(context.message.deliveryCount)"])
    }
    broker.subscriber("double") { (number: Int, context) in
        number * 2
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await CourierApp(brokers: [broker]).runService() }
        await broker.waitUntilSubscribed()
        // Returns once the server confirmed it; unroutable (mandatory) is an error.
        try await broker.publish(Order(id: 7, item: "tea"), to: .exchange("orders", routingKey: "orders.created"), options: RabbitPublishOptions(persistent: true))
        try await broker.publish(Order(id: 8, item: "cake"), to: "jobs")
        // Direct reply-to: no reply queue to declare.
        let doubled = try await broker.request(21, to: "double", as: Int.self, timeout: .seconds(5))
        _ = doubled
        try await group.waitForAll()
    }
}
