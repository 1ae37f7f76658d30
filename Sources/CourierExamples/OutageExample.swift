import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis

// README: "Reconnects and outages": one publish timeout per broker, one error code naming the outage.
func outageExample(order: Order) async throws {
    var redis = try RedisConfiguration(url: "redis://127.0.0.1:6379")
    redis.publishTimeout = .seconds(10)   // the whole publish: waiting for the connection, sending, the reply
    let redisBroker = RedisBroker(configuration: redis)
    do {
        try await redisBroker.publish(order, to: .stream("orders"))
    } catch let error as RedisError where error.code == .connectionUnavailable {
        // Redis was down for the whole 10 s: error.message says since when and why; nothing is sent later.
        throw error
    }

    var nats = NatsConfiguration(servers: ["nats://127.0.0.1:4222"])
    nats.publishTimeout = .seconds(10)    // waiting for nats.c's reconnect, sending, a JetStream PubAck
    let natsBroker = NatsBroker(configuration: nats)
    do {
        try await natsBroker.publish(order, to: "orders")
    } catch let error as NatsError where error.code == .connectionUnavailable {
        // Never handed to nats.c: not sent later either.
        throw error
    }

    var rabbit = try RabbitConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/")
    rabbit.publishTimeout = .seconds(10)  // waiting for the reconnect and recovery, sending, the confirm
    let rabbitBroker = RabbitBroker(configuration: rabbit)
    do {
        try await rabbitBroker.publish(order, to: .queue("orders"))
    } catch let error as RabbitError where error.code == .connectionUnavailable || error.code == .timeout {
        // No connection for 10 s (the policy goes on reconnecting), or no confirm in time.
        throw error
    }

    var kafka = try KafkaConfiguration(url: "kafka://127.0.0.1:9092")
    kafka.deliveryTimeout = .seconds(10)  // Kafka's publish timeout (librdkafka's message.timeout.ms)
    let kafkaBroker = KafkaBroker(configuration: kafka)
    do {
        try await kafkaBroker.publish(order, to: "orders")
    } catch let error as KafkaError where error.code == .brokerUnavailable || error.code == .authenticationFailed {
        // No broker for 10 s (librdkafka dropped the record), or the login was refused (at once).
        throw error
    }
}

// README: "Reconnects and outages": one ReconnectPolicy, set the same way on every broker.
func reconnectPolicyExample() throws -> (RedisConfiguration, RabbitConfiguration, NatsConfiguration, KafkaConfiguration) {
    let policy = ReconnectPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(10), maximumAttempts: 100)
    var redis = try RedisConfiguration(url: "redis://127.0.0.1:6379")
    redis.reconnect = policy              // a publish fails with .connectionUnavailable once it gives up
    var rabbit = try RabbitConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/")
    rabbit.reconnect = policy             // nil: a lost connection stops the broker
    var nats = NatsConfiguration(servers: ["nats://127.0.0.1:4222"])
    nats.reconnect = policy               // maximumAttempts per server, as nats.c counts them
    var kafka = try KafkaConfiguration(url: "kafka://127.0.0.1:9092")
    kafka.reconnect = policy              // reconnect.backoff.ms = 200, reconnect.backoff.max.ms = 10000
    return (redis, rabbit, nats, kafka)
}
