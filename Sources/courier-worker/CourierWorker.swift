import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation

/// One instance of a scaled-out service, for the scale-out tests (issue 24, `ScaleOutTopologyTests`):
/// it consumes numbers from one source it shares with the other instances (a Redis stream group, a
/// JetStream durable consumer, a Kafka consumer group, a RabbitMQ queue's competing consumers) and
/// prints `handled NUMBER TRACE-ID` for each, flushed at once, before the message is acknowledged:
/// a test that kills an instance knows what it handled, and what comes again elsewhere.
///
/// usage: courier-worker redis|nats|kafka|rabbitmq URL SOURCE WORKER-NAME
@main
struct CourierWorker {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 5 else {
            FileHandle.standardError.write(Data("usage: courier-worker redis|nats|kafka|rabbitmq URL SOURCE WORKER-NAME\n".utf8))
            exit(2)
        }
        let (kind, url, source, worker) = (arguments[1], arguments[2], arguments[3], arguments[4])
        // Acknowledged after the handler: an instance killed mid-message leaves it to another.
        let options = SubscriberOptions(ackPolicy: .ack)
        switch kind {
        case "redis":
            let broker = try RedisBroker(url: url)
            // What the killed instance had read but not acknowledged is claimed by the others.
            broker.subscriber(.stream(source, group: "workers", consumer: worker, claimIdleAfter: .seconds(2)), options: options, handle)
            try await run(broker)
        case "nats":
            let broker = try NatsBroker(url: url)
            var consumer = NatsConsumer.pull("workers", batchSize: 8, expires: .seconds(1))
            consumer.ackWait = .seconds(2)
            broker.subscriber(.jetStream("\(source).work", stream: source, consumer: consumer), options: options, handle)
            try await run(broker)
        case "kafka":
            var configuration = try KafkaConfiguration(url: url)
            // A killed member's partitions go to the others once the group notices it is gone
            // (after the session timeout).
            configuration.consumerProperties = ["session.timeout.ms": "2000", "heartbeat.interval.ms": "250"]
            let broker = KafkaBroker(configuration: configuration)
            broker.subscriber(.topics(source, group: "\(source)-workers", start: .beginning), options: options, handle)
            try await run(broker)
        case "rabbitmq":
            let broker = try RabbitBroker(url: url)
            broker.subscriber(.queue(RabbitQueue(source, durable: true)), options: options, handle)
            try await run(broker)
        default:
            FileHandle.standardError.write(Data("courier-worker: unknown broker '\(kind)'\n".utf8))
            exit(2)
        }
    }

    @Sendable static func handle(_ number: Int, _ context: MessageContext) async throws {
        // The trace the message's publish started: every delivery of it belongs to that one.
        let traceID = context.message.headers["traceparent"].map { $0.split(separator: "-").dropFirst().first.map(String.init) ?? "-" } ?? "-"
        emit("handled \(number) \(traceID)")
    }

    /// Writes `line` to standard output at once (unbuffered): the process may be killed any time.
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Runs the broker until the process is killed (the tests' way to end an instance).
    static func run<T: BrokerTransport>(_ broker: Broker<T>) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            guard await broker.waitUntilRunning() else {
                try await group.waitForAll()
                return
            }
            emit("READY")
            try await group.waitForAll()
        }
    }
}
