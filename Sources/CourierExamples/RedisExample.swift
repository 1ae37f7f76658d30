import Courier
import CourierRedis
import NIOSSL

// README: "Redis".
func redisExample() async throws {
    let broker = try RedisBroker(url: "redis://127.0.0.1:6379/0", middlewares: [TelemetryMiddleware()])

    // A pub/sub channel (a plain name), a pattern with a capture, a list, a stream group.
    broker.subscriber("notifications") { (text: String, context) in
        context.logger.info("notified", metadata: ["text": "\(text)"])
    }
    broker.subscriber(.pattern("logs.{level}")) { (line: String, context) in
        let level = try context.message.redis.path["level"] ?? "info"
        context.logger.info("log line", metadata: ["level": "\(level)"])
    }
    broker.subscriber(.list("jobs")).publisher(.stream("results", maxLength: 10_000)).handle { (job: Order, context) in
        Receipt(orderID: job.id)
    }
    broker.subscriber(
        .stream("results", group: "billing", consumer: "billing-1", claimIdleAfter: .seconds(60)),
        options: SubscriberOptions(ackPolicy: .nackOnError)
    ) { (receipt: Receipt, context) in
        let entry = try context.message.redis.entryID ?? "-"
        context.logger.info("billed", metadata: ["entry": "\(entry)"])
    }
    broker.subscriber(.list("audit"), batch: BatchOptions(maxMessages: 50)).handle { (lines: [String], context) in
        context.logger.info("audit batch", metadata: ["size": "\(lines.count)"])
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await CourierApp(brokers: [broker]).runService() }
        await broker.waitUntilSubscribed()
        try await broker.publish(Order(id: 7, item: "tea"), to: .list("jobs"))
        try await broker.publishBatch(["a", "b"], to: .list("audit"))
        let pong = try await broker.request("ping", to: "notifications-rpc", timeout: .seconds(1))
        _ = pong
        try await group.waitForAll()
    }
}

// README: "Redis" (TLS, credentials, pool).
func redisConfigurationExample() throws -> RedisBroker {
    var configuration = try RedisConfiguration(url: "rediss://app:secret@cache.internal:6380/2")
    configuration.tls?.trustRoots = .file("/etc/courier/redis-ca.pem")
    configuration.connectionPoolSize = 4
    let secure = RedisBroker(configuration: configuration, middlewares: [TelemetryMiddleware()])
    return secure
}
