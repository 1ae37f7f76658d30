import Courier
import CourierRabbit

// README: "RabbitMQ".
func rabbitExample() async throws {
    let broker = try RabbitBroker(url: "amqp://guest:guest@127.0.0.1:5672/", middlewares: [TelemetryMiddleware()])

    // A durable queue on the default exchange (FastStream declares it the same way).
    broker.subscriber("jobs") { (job: Order, context) in
        let routingKey = try context.message.rabbit.routingKey
        context.logger.info("job", metadata: ["routing_key": "\(routingKey)"])
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

// README: "RabbitMQ" — connecting for production: TLS, reconnecting, topology.
func rabbitProductionExample(caFile: String) async throws {
    var configuration = try RabbitConfiguration(url: "amqps://orders:secret@rabbit.internal:5671/shop")
    configuration.tls?.trustRoots = .file(caFile)
    configuration.heartbeat = .seconds(30)
    // The default: 100 ms doubling to 5 s, for ever; nil makes a lost connection stop the broker.
    configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(10), maximumAttempts: nil)
    let broker = RabbitBroker(configuration: configuration, middlewares: [TelemetryMiddleware()])

    // Exchanges and bindings of your own; declared again after a reconnect.
    try await broker.declareExchange(RabbitExchange("events", kind: .topic))
    try await broker.declareExchange(RabbitExchange("audit", kind: .fanout, internal: true))
    try await broker.bind(exchange: "audit", to: "events", routingKey: "orders.#")

    // `{region}` binds as `*` and captures the word, like FastStream's path parameters.
    broker.subscriber(.queue(RabbitQueue("orders-by-region"), exchange: RabbitExchange("events", kind: .topic), routingKey: "orders.{region}.created")) {
        (order: Order, context) in
        let region = try context.message.rabbit.path["region"] ?? "-"
        context.logger.info("order", metadata: ["region": "\(region)"])
    }
    // A quorum queue counts deliveries (`x-delivery-count`): give up after three.
    let payments = RabbitQueue("payments", arguments: ["x-queue-type": .string("quorum"), "x-dead-letter-exchange": .string("payments.dlx")])
    broker.subscriber(.queue(payments), options: SubscriberOptions(ackPolicy: .manual)) { (order: Order, context) in
        if context.message.deliveryCount > 3 { try await context.reject() } else { try await context.ack() }
    }
    // Up to 100 messages per delivery, waiting at most 50 ms to fill a batch.
    broker.subscriber("clicks", batch: BatchOptions(maxMessages: 100, maxWait: .milliseconds(50))).handle { (clicks: [String], context) in
        context.logger.info("clicks", metadata: ["count": "\(clicks.count)"])
    }
    try await CourierApp(brokers: [broker]).runService()
}

// README: "RabbitMQ" — a cluster's nodes.
func rabbitClusterExample() throws -> RabbitBroker {
    let cluster = try RabbitConfiguration(url: "amqp://orders:secret@rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/shop")
    var nodes = RabbitConfiguration(endpoints: [RabbitEndpoint(host: "rabbit-1"), RabbitEndpoint(host: "rabbit-2")], username: "orders", password: "secret")
    nodes.virtualHost = "shop"
    _ = nodes
    let clustered = RabbitBroker(configuration: cluster)
    return clustered
}
