import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis

// README: "Production topologies": each clustered form's configuration.
func topologiesExample() async throws {
    // RabbitMQ: the cluster's nodes; a quorum queue for durable work.
    let rabbit = RabbitBroker(configuration: try RabbitConfiguration(url: "amqp://orders:secret@rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/shop"))
    let work = RabbitQueue("payments", durable: true, arguments: ["x-queue-type": .string("quorum")])
    rabbit.subscriber(.queue(work)) { (order: Order, context) in
        // Redelivered after a node died before the ack reached it: handle idempotently.
        if try context.message.rabbit.redelivered { context.logger.info("seen before?", metadata: ["order": "\(order.id)"]) }
    }

    // NATS: every server of the cluster, and a stream kept on three of them.
    var nats = NatsConfiguration(servers: ["nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"])
    nats.publishTimeout = .seconds(30)   // a publish waits out a stream's leader election within it
    let natsBroker = NatsBroker(configuration: nats)
    try await natsBroker.declareStream(NatsStream("ORDERS", subjects: ["orders.>"], replicas: 3))

    // Kafka: several bootstrap servers; librdkafka learns the rest of the cluster from any of them.
    let kafka = KafkaBroker(configuration: try KafkaConfiguration(url: "kafka://kafka-1:9092,kafka-2:9092,kafka-3:9092"))
    _ = kafka

    // Redis behind Sentinel: the sentinels (port 26379 by default) and the name they monitor the master by.
    let redis = RedisBroker(configuration: try RedisConfiguration(url: "redis+sentinel://app:secret@sentinel-1,sentinel-2,sentinel-3/orders"))
    // The same in code; the sentinels' own password, if they have one, goes in RedisSentinels.
    var sentinel = RedisConfiguration(
        sentinels: RedisSentinels([.sentinel("sentinel-1"), .sentinel("sentinel-2"), .sentinel("sentinel-3")], masterName: "orders"),
        username: "app", password: "secret"
    )
    sentinel.publishTimeout = .seconds(30)   // a failover takes a few seconds: publishes wait it out

    // A Redis Cluster: some of its nodes (6379 by default); the client learns the rest from them.
    let cluster = RedisBroker(configuration: try RedisConfiguration(url: "redis+cluster://app:secret@redis-1:6379,redis-2:6379,redis-3:6379"))
    // Sharded pub/sub (Redis 7): SSUBSCRIBE / SPUBLISH, carried only by the channel's slot's node.
    cluster.subscriber(.channel("prices", sharded: true)) { (price: Double, _) in print(price) }
    try await cluster.publish(101.5, to: .channel("prices", sharded: true))
    _ = (redis, sentinel, cluster)
}
