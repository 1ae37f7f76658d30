import CKafka
import CNats
import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation
import NIOCore

/// One broker's backlog check: how much memory a Courier subscriber takes while it drains a
/// backlog far larger than what it may hold.
struct BacklogRow: Codable {
    var broker: String
    var messages: Int
    var fillSeconds: Double
    var drainThroughput: Double
    /// MiB: the process before the subscriber started, its peak while draining, and the difference.
    var rssBefore: Double?
    var peakRSS: Double?
    /// Why the check did not complete, if it did not.
    var failure: String?

    static func table(_ rows: [BacklogRow]) -> String {
        var lines = [["broker", "backlog", "filled in s", "drained msg/s", "RSS before MiB", "peak RSS draining MiB", "growth MiB", "backlog size MiB"]]
        for row in rows {
            let mebibytes: (Double?) -> String = { $0.map { Row.format($0, decimals: 0) } ?? "-" }
            var growth: Double?
            if let before = row.rssBefore, let peak = row.peakRSS { growth = peak - before }
            let backlogSize = Double(row.messages * BacklogBench.payloadSize) / 1_048_576
            var line = [row.broker, String(row.messages)]
            line.append(Row.format(row.fillSeconds, decimals: 1))
            line.append(Row.format(row.drainThroughput, decimals: 0))
            line += [mebibytes(row.rssBefore), mebibytes(row.peakRSS), mebibytes(growth), mebibytes(backlogSize)]
            lines.append(line)
            if let failure = row.failure { lines[lines.count - 1][2] = "failed: \(failure)" }
        }
        return """
            ## Backlog: memory stays bounded

            Each broker holds a backlog of messages of \(BacklogBench.payloadSize) bytes (filled by the raw client) before a Courier subscriber
            (tuned as in the saturation tables, a handler that does nothing) starts and drains all of it; the process's
            resident memory before it started and at its peak while draining. The growth stays that of the subscriber's
            bounded buffers, whatever the backlog.


            """ + Row.render(lines)
    }
}

/// The backlog check of `make bench`, on every broker given.
struct BacklogBench {
    var messages: Int
    var kafkaMessages: Int
    var redis: String?
    var nats: String?
    var kafka: String?
    var rabbit: String?

    static let payloadSize = 64

    /// Every broker's row; a broker whose check fails gets a row saying why, and the rest still run.
    func run() async -> [BacklogRow] {
        var rows: [BacklogRow] = []
        let checks: [(String, String?, (String) async throws -> BacklogRow)] = [
            ("Redis list", redis, self.redis), ("NATS JetStream", nats, self.jetStream),
            ("Kafka", kafka, self.kafka), ("RabbitMQ", rabbit, self.rabbit),
        ]
        for (name, url, check) in checks {
            guard let url else { continue }
            do {
                rows.append(try await check(url))
            } catch {
                FileHandle.standardError.write(Data("courier-bench: backlog on \(name) failed: \(error)\n".utf8))
                rows.append(BacklogRow(broker: name, messages: name == "Kafka" ? kafkaMessages : messages, fillSeconds: .nan, drainThroughput: .nan, failure: "\(error)"))
            }
        }
        return rows
    }

    private var payload: ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: Self.payloadSize) }

    /// Fills the backlog with `fill`, then drains it with `broker` subscribed to `source`.
    private func measure<Transport: BrokerTransport>(
        _ name: String,
        messages: Int? = nil,
        fill: () async throws -> Void,
        broker: () throws -> Broker<Transport>,
        source: Transport.Source
    ) async throws -> BacklogRow {
        let messages = messages ?? self.messages
        FileHandle.standardError.write(Data("courier-bench: backlog of \(messages) on \(name)\n".utf8))
        let filling = ContinuousClock.now
        try await fill()
        let filled = ContinuousClock.now - filling
        let broker = try broker()
        let counter = ArrivalCounter(expected: messages, warmup: 0)
        broker.subscriber(source) { (_: ByteBuffer, _) in counter.arrived() }
        PeakRSS.reset()
        let before = PeakRSS.currentMebibytes()
        counter.startClock()
        let drained = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            let elapsed = try await counter.waitForAll("the backlog on \(name)")
            await broker.stopIntake()
            try await group.waitForAll()
            return elapsed
        }
        return BacklogRow(
            broker: name, messages: messages, fillSeconds: filled.seconds, drainThroughput: Double(messages) / drained.seconds,
            rssBefore: before, peakRSS: PeakRSS.mebibytes()
        )
    }

    // MARK: - Redis list

    private func redis(_ url: String) async throws -> BacklogRow {
        let list = "courier.backlog.\(UUID().uuidString.prefix(8))"
        let row = try await measure(
            "Redis list",
            fill: {
                let connection = try await RedisConnection.connect(try RedisConfiguration(url: url))
                let envelope = try RedisEnvelope.encode(OutgoingMessage(body: payload), allocator: ByteBufferAllocator())
                let chunk = 1_000
                var left = messages
                while left > 0 {
                    // 100 pipelined RPUSHes of up to 1,000 envelopes each.
                    var commands: [RedisCommand] = []
                    while left > 0, commands.count < 100 {
                        let count = min(chunk, left)
                        commands.append(RedisCommand("RPUSH", [.string(list)] + Array(repeating: .bytes(envelope), count: count)))
                        left -= count
                    }
                    _ = try await connection.send(pipelined: commands)
                }
                await connection.close()
            },
            broker: { try RedisBroker(url: url) },
            source: .list(list, prefetch: RedisBench.saturationPrefetch)
        )
        return row
    }

    // MARK: - NATS JetStream

    private func jetStream(_ url: String) async throws -> BacklogRow {
        let id = UUID().uuidString.prefix(8)
        let subject = "courier.backlog.\(id)", stream = "BACKLOG_\(id)"
        let admin = try NatsTransport(configuration: NatsConfiguration(url: url))
        try await admin.declareStream(NatsStream(stream, subjects: [subject], storage: .file))
        let messages = self.messages
        let row = try await measure(
            "NATS JetStream (file stream)",
            fill: {
                // nats.c's asynchronous JetStream publishes (up to 4,096 unacknowledged), off Swift's pool.
                try await onThread {
                    let connection = try RawNats.connect(url)
                    defer { natsConnection_Destroy(connection.pointer) }
                    var options = jsOptions()
                    jsOptions_Init(&options)
                    options.PublishAsync.MaxPending = 4_096
                    var context: OpaquePointer?
                    try RawNats.check(natsConnection_JetStream(&context, connection.pointer, &options), "jetstream")
                    defer { jsCtx_Destroy(context) }
                    let payload = [UInt8](repeating: UInt8(ascii: "x"), count: Self.payloadSize)
                    for _ in 0..<messages {
                        try RawNats.check(js_PublishAsync(context, subject, payload, Int32(payload.count), nil), "js publish async")
                    }
                    try RawNats.check(js_PublishAsyncComplete(context, nil), "js publish async complete")
                }
            },
            broker: { try NatsBroker(url: url) },
            source: .jetStream(subject, stream: stream, consumer: .pull("backlog", batchSize: 100))
        )
        try await admin.deleteStream(stream)
        await admin.close()
        return row
    }

    // MARK: - Kafka

    private func kafka(_ url: String) async throws -> BacklogRow {
        let topic = "courier.backlog.\(UUID().uuidString.prefix(8))"
        let servers = try KafkaConfiguration(url: url).bootstrapServers.joined(separator: ",")
        let messages = kafkaMessages
        return try await measure(
            "Kafka (tansu, one partition)",
            messages: messages,
            fill: {
                let producer = try RawKafkaProducer(servers: servers, linger: 5)
                try RawKafka.createTopic(topic, handle: producer.handle.pointer)
                try await producer.produceWithoutWaiting(topic: topic, count: messages)
                await producer.close()
            },
            broker: {
                // As in the Kafka saturation table: tansu lists a partition's batches within the
                // fetch's wait (KafkaBench.saturationFetchWaitMilliseconds), and a subscriber that
                // paused at its buffer's bound fetches again on resuming.
                var configuration = try KafkaConfiguration(url: url)
                configuration.consumerProperties["fetch.wait.max.ms"] = String(KafkaBench.saturationFetchWaitMilliseconds)
                return KafkaBroker(configuration: configuration)
            },
            source: .topics(topic, start: .beginning)
        )
    }

    // MARK: - RabbitMQ

    private func rabbit(_ url: String) async throws -> BacklogRow {
        let queue = "courier-backlog-\(UUID().uuidString.prefix(8).lowercased())"
        let configuration = try RabbitConfiguration(url: url)
        let payload = self.payload
        let messages = self.messages
        let row = try await measure(
            "RabbitMQ (classic durable queue)",
            fill: {
                let connection = try await AMQPConnection.connect(configuration)
                let channel = try await connection.openChannel()
                try await channel.call(.queueDeclare(queue: queue, passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: [:]))
                try await channel.selectConfirms()
                // 16 publishers, each sending batches of 500 under one round of confirms.
                let batch = 500
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for publisher in 0..<16 {
                        let share = messages / 16 + (publisher < messages % 16 ? 1 : 0)
                        group.addTask {
                            var left = share
                            while left > 0 {
                                let count = min(batch, left)
                                try await channel.publish(Array(repeating: AMQPPublish(routingKey: queue, body: payload), count: count))
                                left -= count
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                await connection.close()
            },
            broker: { try RabbitBroker(url: url) },
            source: .queue(RabbitQueue(queue), prefetch: 256)
        )
        let admin = RabbitTransport(configuration: configuration)
        try? await admin.deleteQueue(queue)
        await admin.close()
        return row
    }
}
