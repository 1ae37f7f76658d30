import ArgumentParser
import Foundation
import Courier
import CourierMemory
import Logging
import NIOCore
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// `make bench`: in-memory pipeline throughput and latency, with and without telemetry, every row
/// measured in the same run and compared with the no-middleware row.
@main
struct CourierBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-bench",
        abstract: "Measures throughput and latency with and without TelemetryMiddleware: in memory, and on Redis, NATS, Kafka and RabbitMQ against the raw clients and FastStream."
    )

    @Option(help: "Messages per throughput run (64-byte bodies).")
    var messages = 200_000

    @Option(help: "Warm-up messages per run, not measured.")
    var warmup = 5_000

    @Option(help: "Throughput runs per scenario, interleaved; the median is reported.")
    var rounds = 3

    @Option(help: "Messages sent one at a time (each waits for the handler) to measure latency.")
    var latencyMessages = 5_000

    @Option(help: "The subscriber's maxConcurrency.")
    var concurrency = 1

    @Option(help: "A redis-server for the Redis rows (default: $COURIER_REDIS_URL; none: no Redis rows).")
    var redis: String?

    @Option(help: "Messages per Redis run.")
    var redisMessages = 20_000

    @Option(help: "A nats-server with JetStream for the NATS rows (default: $COURIER_NATS_URL; none: no NATS rows).")
    var nats: String?

    @Option(help: "Messages per NATS run (core and JetStream).")
    var natsMessages = 20_000

    @Option(help: "A Kafka-compatible server for the Kafka rows (default: $COURIER_KAFKA_URL; none: no Kafka rows).")
    var kafka: String?

    @Option(help: "Messages per Kafka run (each publish waits for the broker's acknowledgement).")
    var kafkaMessages = 3_000

    @Option(help: "A RabbitMQ node for the RabbitMQ rows (default: $COURIER_RABBIT_URL; none: no RabbitMQ rows).")
    var rabbit: String?

    @Option(help: "Messages per RabbitMQ run (each publish waits for its publisher confirm).")
    var rabbitMessages = 3_000

    @Option(help: "Runs of each Swift row of the Redis, NATS, Kafka and RabbitMQ tables, interleaved; the median is reported (FastStream runs once).")
    var brokerRounds = 3

    @Option(help: "The Python with FastStream for its rows (default: $COURIER_PEER_PYTHON).")
    var python: String?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        var configuration = OTel.Configuration.default
        configuration.traces.sampler = .alwaysOn
        configuration.traces.exporter = .none
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.diagnosticLogLevel = .error
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        let otelGroup = ServiceGroup(services: [backend.service], logger: Logger(label: "courier-bench"))

        let scenarios: [(name: String, middlewares: [any CourierMiddleware])] = [
            ("no middleware", []),
            ("TelemetryMiddleware, no-op tracer", [TelemetryMiddleware(tracer: NoOpTracer())]),
            ("TelemetryMiddleware, swift-otel (always on, batch)", [TelemetryMiddleware(tracer: backend.factory)]),
        ]
        var rows = scenarios.map { Row(name: $0.name) }
        var tables: [String] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await otelGroup.run() }
            // Interleaved rounds, so a slow moment of the machine hits every scenario alike.
            for _ in 0..<rounds {
                for (index, scenario) in scenarios.enumerated() {
                    rows[index].throughputs.append(try await measureThroughput(middlewares: scenario.middlewares))
                }
            }
            for (index, scenario) in scenarios.enumerated() {
                rows[index].latencies = try await measureLatency(middlewares: scenario.middlewares)
            }
            let environment = ProcessInfo.processInfo.environment
            let python = self.python ?? environment["COURIER_PEER_PYTHON"]
            let peer = python.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
            if let redis = redis ?? environment["COURIER_REDIS_URL"], redis != "none" {
                let rows = try await RedisBench(url: redis, python: peer, workload: brokerWorkload(messages: redisMessages), tracer: backend.factory)
                    .run(rounds: brokerRounds)
                tables.append(
                    BrokerWorkload.table(
                        """
                        Redis list: \(redisMessages) messages of 64 bytes published one after another, one subscriber in the same
                        process, a handler that does nothing; latency: publish call to handler start, one message at a time.

                        """,
                        rows
                    )
                )
            }
            if let nats = nats ?? environment["COURIER_NATS_URL"], nats != "none" {
                let core = try await NatsBench(url: nats, python: peer, workload: brokerWorkload(messages: natsMessages), tracer: backend.factory)
                    .run(jetStream: false, rounds: brokerRounds)
                tables.append(
                    BrokerWorkload.table(
                        """
                        NATS core: \(natsMessages) messages of 64 bytes published to a subject one after another, one subscriber in
                        the same process, a handler that does nothing; latency: publish call to handler start, one at a time.

                        """,
                        core
                    )
                )
                let jetStream = try await NatsBench(url: nats, python: peer, workload: brokerWorkload(messages: natsMessages), tracer: backend.factory)
                    .run(jetStream: true, rounds: brokerRounds)
                tables.append(
                    BrokerWorkload.table(
                        """
                        NATS JetStream (memory stream): \(natsMessages) publishes one after another, each waiting for its PubAck; a
                        durable pull consumer (16 per fetch) in the same process acks each message after a handler that does nothing.

                        """,
                        jetStream
                    )
                )
            }
            if let kafka = kafka ?? environment["COURIER_KAFKA_URL"], kafka != "none" {
                // A Kafka round trip takes milliseconds here (see KafkaBench.fetchWaitMilliseconds).
                let workload = brokerWorkload(messages: kafkaMessages, latencyMessagesAtMost: 500)
                let rows = try await KafkaBench(url: kafka, python: peer, workload: workload, tracer: backend.factory).run(rounds: brokerRounds)
                tables.append(
                    BrokerWorkload.table(
                        """
                        Kafka: \(kafkaMessages) publishes of 64 bytes one after another to a fresh topic of one partition, each
                        waiting for the broker's acknowledgement (raw and FastStream: linger.ms=0; Courier: its own settings); one
                        subscriber in the same process (no consumer group; faststream.confluent: a fresh group, joined during warm-up)
                        with a handler that does nothing, every consumer at fetch.wait.max.ms=\(KafkaBench.fetchWaitMilliseconds) (tansu answers a waiting
                        fetch after half of it, which dominates latency); latency: publish call to handler start, one at a time.

                        """,
                        rows,
                        peer: "confluent",
                        peerColumn: "vs FastStream confluent traced"
                    )
                )
            }
            if let rabbit = rabbit ?? environment["COURIER_RABBIT_URL"], rabbit != "none" {
                let rows = try await RabbitBench(url: rabbit, python: peer, workload: brokerWorkload(messages: rabbitMessages), tracer: backend.factory)
                    .run(rounds: brokerRounds)
                tables.append(
                    BrokerWorkload.table(
                        """
                        RabbitMQ: \(rabbitMessages) publishes of 64 bytes one after another to a fresh durable queue through the default
                        exchange, each waiting for its publisher confirm; one subscriber in the same process (prefetch \(RabbitBench.prefetch)) acking
                        each message after a handler that does nothing; latency: publish call to handler start, one at a time.

                        """,
                        rows
                    )
                )
            }
            await otelGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        print(Row.table(rows, messages: messages, rounds: rounds, latencyMessages: latencyMessages, concurrency: concurrency))
        for table in tables { print(table) }
    }

    /// A broker table's workload: a tenth of `messages` (at most `--warmup`) as warm-up, then
    /// `messages` published one after another, then `--latency-messages` (at most `latencyCap`)
    /// one at a time.
    private func brokerWorkload(messages: Int, latencyMessagesAtMost latencyCap: Int = 1_000) -> BrokerWorkload {
        BrokerWorkload(messages: messages, warmup: min(warmup, messages / 10), latencyMessages: min(latencyMessages, latencyCap))
    }

    /// Publishes as fast as the bounded queue accepts and returns delivered messages per second.
    private func measureThroughput(middlewares: [any CourierMiddleware]) async throws -> Double {
        let broker = MemoryBroker(capacity: 1024, middlewares: middlewares)
        let counter = ArrivalCounter(expected: warmup + messages, warmup: warmup)
        broker.subscriber("bench", options: SubscriberOptions(maxConcurrency: concurrency)) { (_: ByteBuffer, _) in
            counter.arrived()
        }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        var elapsed = Duration.zero
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            for index in 0..<(warmup + messages) {
                if index == warmup {
                    await counter.waitForWarmup()
                    counter.startClock()
                }
                try await broker.publish(payload, to: "bench")
            }
            elapsed = await counter.waitForAll()
            await broker.stopIntake()
            try await group.waitForAll()
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(messages) / seconds : 0
    }

    /// Sends one message at a time and measures from the publish call to the handler's start.
    private func measureLatency(middlewares: [any CourierMiddleware]) async throws -> [Duration] {
        let broker = MemoryBroker(capacity: 16, middlewares: middlewares)
        let (arrivals, arrived) = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
        broker.subscriber("bench") { (_: ByteBuffer, _) in
            arrived.yield(.now)
        }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        var latencies: [Duration] = []
        latencies.reserveCapacity(latencyMessages)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            var iterator = arrivals.makeAsyncIterator()
            for index in 0..<(warmup + latencyMessages) {
                let sent = ContinuousClock.now
                try await broker.publish(payload, to: "bench")
                guard let received = await iterator.next() else { break }
                if index >= warmup { latencies.append(received - sent) }
            }
            await broker.stopIntake()
            try await group.waitForAll()
        }
        return latencies
    }
}

/// Counts handler arrivals and timestamps the end of warm-up and of the measured messages.
final class ArrivalCounter: Sendable {
    private struct State {
        var received = 0
        var start: ContinuousClock.Instant?
        var end: ContinuousClock.Instant?
    }

    private let expected: Int
    private let warmup: Int
    private let state = Mutex(State())
    private let warmedUp = Latch()
    private let done = Latch()

    init(expected: Int, warmup: Int) {
        self.expected = expected
        self.warmup = warmup
        if warmup <= 0 { warmedUp.open() }
    }

    func startClock() {
        state.withLock { $0.start = .now }
    }

    func arrived() {
        let received = state.withLock { state -> Int in
            state.received += 1
            if state.received == expected { state.end = .now }
            return state.received
        }
        if received == warmup { warmedUp.open() }
        if received == expected { done.open() }
    }

    func waitForWarmup() async {
        await warmedUp.wait()
    }

    /// Waits for the last message; returns the time since ``startClock()``.
    func waitForAll() async -> Duration {
        await done.wait()
        return state.withLock { state in
            guard let start = state.start, let end = state.end else { return .zero }
            return end - start
        }
    }
}

struct Row {
    var name: String
    var throughputs: [Double] = []
    var latencies: [Duration] = []

    var throughput: Double {
        let sorted = throughputs.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// The latency below which `fraction` of the messages fall, in microseconds.
    func percentile(_ fraction: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))
        let (seconds, attoseconds) = sorted[index].components
        return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
    }

    static func table(_ rows: [Row], messages: Int, rounds: Int, latencyMessages: Int, concurrency: Int) -> String {
        let base = rows[0]
        var out = """
            In-memory broker, one subscriber (maxConcurrency \(concurrency)), 64-byte bodies, a handler that does nothing.
            msg/s: median of \(rounds) interleaved runs of \(messages) messages published back to back.
            latency: publish call to handler start, \(latencyMessages) messages sent one at a time.


            """
        let header = ["scenario", "msg/s", "vs base", "p50 µs", "vs base", "p99 µs", "vs base"]
        var lines: [[String]] = [header]
        for row in rows {
            lines.append([
                row.name,
                format(row.throughput, decimals: 0),
                format(row.throughput / base.throughput, decimals: 2) + "×",
                format(row.percentile(0.5), decimals: 1),
                format(row.percentile(0.5) / base.percentile(0.5), decimals: 2) + "×",
                format(row.percentile(0.99), decimals: 1),
                format(row.percentile(0.99) / base.percentile(0.99), decimals: 2) + "×",
            ])
        }
        out += render(lines)
        return out
    }

    /// A Markdown table, numbers right-aligned.
    static func render(_ lines: [[String]]) -> String {
        var out = ""
        let header = lines[0]
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        for (index, line) in lines.enumerated() {
            let cells = line.enumerated().map { column, cell in
                column == 0
                    ? cell + String(repeating: " ", count: widths[column] - cell.count)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
            if index == 0 {
                out += "|" + widths.enumerated().map { column, width in
                    column == 0 ? String(repeating: "-", count: width + 2) : String(repeating: "-", count: width + 1) + ":"
                }.joined(separator: "|") + "|\n"
            }
        }
        return out
    }

    static func format(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        if decimals == 0 { return String(Int(rounded)) }
        var text = String(rounded)
        let fraction = text.split(separator: ".").last.map(\.count) ?? 0
        if fraction < decimals { text += String(repeating: "0", count: decimals - fraction) }
        return text
    }
}
