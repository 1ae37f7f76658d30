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

/// `make bench`: every broker the project has, in two workloads — latency (one publisher, one
/// message after another) and saturation (`--publishers` concurrent publishers, the subscriber
/// tuned for throughput) — for the raw client, Courier untraced, with the no-op tracer, with
/// swift-otel and with CourierOTLP (always on and 10% parent-based), and FastStream; every row
/// measured in the same run, each in a process of its own (so its peak RSS is its own, see
/// ``RowProcesses``), ratios printed, results written as JSON and drawn as an SVG chart.
@main
struct CourierBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-bench",
        abstract: "Measures throughput, latency and peak memory with and without tracing: in memory, and on Redis, NATS, Kafka and RabbitMQ against the raw clients and FastStream."
    )

    @Option(help: "Messages per in-memory run (64-byte bodies).")
    var messages = 200_000

    @Option(help: "Warm-up messages per run, not measured.")
    var warmup = 5_000

    @Option(help: "Runs of each in-memory row, interleaved; the median is reported.")
    var rounds = 3

    @Option(help: "Messages sent one at a time (each waits for the handler) to measure latency.")
    var latencyMessages = 5_000

    @Option(help: "Concurrent publishers in the saturation workload.")
    var publishers = 16

    @Option(help: "Messages per saturation run on a broker (Swift rows).")
    var saturationMessages = 100_000

    @Option(help: "Messages per FastStream saturation run (it moves a few thousand a second).")
    var fastStreamMessages = 20_000

    @Option(help: "A redis-server for the Redis rows (default: $COURIER_REDIS_URL; none: no Redis rows).")
    var redis: String?

    @Option(help: "Messages per Redis latency run.")
    var redisMessages = 20_000

    @Option(help: "A nats-server with JetStream for the NATS rows (default: $COURIER_NATS_URL; none: no NATS rows).")
    var nats: String?

    @Option(help: "Messages per NATS latency run (core and JetStream).")
    var natsMessages = 20_000

    @Option(help: "A Kafka-compatible server for the Kafka rows (default: $COURIER_KAFKA_URL; none: no Kafka rows).")
    var kafka: String?

    @Option(help: "Messages per Kafka latency run (each publish waits for the broker's acknowledgement).")
    var kafkaMessages = 3_000

    @Option(help: "A RabbitMQ node for the RabbitMQ rows (default: $COURIER_RABBIT_URL; none: no RabbitMQ rows).")
    var rabbit: String?

    @Option(help: "Messages per RabbitMQ latency run (each publish waits for its publisher confirm).")
    var rabbitMessages = 3_000

    @Option(help: "Runs of each Swift row of the broker tables, interleaved; the median is reported (FastStream runs once).")
    var brokerRounds = 3

    @Option(help: "Which workloads to run: latency, saturation or both.")
    var workloads = "latency,saturation"

    @Option(help: "Only the rows whose names contain one of these comma-separated words (raw, no tracing, no-op, swift-otel, CourierOTLP, 10%, FastStream…), for profiling.")
    var rows: String?

    @Option(help: "Which tables to run: memory, redis, nats-core, nats-jetstream, kafka, rabbitmq (default: all; a broker given as none is left out).")
    var tables = "memory,redis,nats-core,nats-jetstream,kafka,rabbitmq"

    @Option(help: "Messages left waiting on each broker for the backlog memory check (0: no check).")
    var backlog = 1_000_000

    @Option(help: "The Kafka backlog (tansu serves a paused and resumed subscriber slowly, see the README).")
    var kafkaBacklog = 200_000

    @Option(help: "The Python with FastStream for its rows (default: $COURIER_PEER_PYTHON; none: no FastStream rows).")
    var python: String?

    @Option(help: "Where the results go as JSON.")
    var json = "Benchmarks/results/bench.json"

    @Option(help: "Where the chart of the saturation tables goes (SVG).")
    var chart = "Benchmarks/results/bench.svg"

    // A row's own process (``RowProcesses``): with `--tables` and `--workloads` naming one table,
    // runs its scenario of this name once and prints it as JSON; by hand, a way to profile one row.
    @Option(help: .hidden)
    var childRow: String?

    // A row's own process: where its tracers send their spans (the receiver of the process that
    // started it).
    @Option(help: .hidden)
    var otlpEndpoint: String?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let tracing = try await BenchTracing.start(endpoint: otlpEndpoint)
        // Each row in a process of its own, which runs it with the same counts and tracers.
        let processes = childRow == nil ? RowProcesses(arguments: childArguments(otlpEndpoint: tracing.endpoint)) : nil
        func placement(_ table: String) -> RowPlacement {
            processes.map { .childProcesses($0, table: table) } ?? .inProcess(only: childRow)
        }
        let otelGroup = ServiceGroup(services: tracing.services, logger: Logger(label: "courier-bench"))
        var report = BenchReport(command: "courier-bench " + CommandLine.arguments.dropFirst().joined(separator: " "))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await otelGroup.run() }
            let environment = ProcessInfo.processInfo.environment
            let python = self.python ?? environment["COURIER_PEER_PYTHON"]
            let peer = python.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
            let selected = Set(workloads.split(separator: ",").map(String.init))
            var kinds: [(saturation: Bool, tracers: [BenchTracer])] = []
            if selected.contains("latency") { kinds.append((false, tracing.latencyTracers)) }
            if selected.contains("saturation") { kinds.append((true, tracing.saturationTracers)) }

            let tables = Set(self.tables.split(separator: ",").map(String.init))
            for (saturation, tracers) in kinds where tables.contains("memory") {
                let workload = saturation
                    ? BrokerWorkload(messages: messages, warmup: warmup, latencyMessages: 0, publishers: publishers, rowFilter: self.rows, placement: placement("memory"))
                    : BrokerWorkload(messages: messages, warmup: warmup, latencyMessages: latencyMessages, rowFilter: self.rows, placement: placement("memory"))
                let rows = try await MemoryBench(workload: workload, tracers: tracers).run(rounds: rounds)
                report.add(
                    broker: "memory", saturation: saturation,
                    title: saturation
                        ? "In memory, saturation: \(messages) messages of 64 bytes from \(publishers) concurrent publishers, one subscriber (maxConcurrency 1, queue capacity \(MemoryBench.capacity)), a handler that does nothing."
                        : "In memory, latency: \(messages) messages of 64 bytes published one after another, one subscriber, a handler that does nothing; latency: publish call to handler start, \(latencyMessages) messages one at a time.",
                    rows: rows
                )
            }
            if let redis = redis ?? environment["COURIER_REDIS_URL"], redis != "none", tables.contains("redis") {
                for (saturation, tracers) in kinds {
                    let bench = RedisBench(url: redis, python: peer, workload: brokerWorkload(saturation, messages: redisMessages, placement: placement("redis")), tracers: tracers, fastStreamMessages: fastStreamMessages)
                    report.add(broker: "Redis", saturation: saturation, title: bench.title, rows: try await bench.run(rounds: brokerRounds))
                }
            }
            if let nats = nats ?? environment["COURIER_NATS_URL"], nats != "none" {
                for jetStream in [false, true] where tables.contains(jetStream ? "nats-jetstream" : "nats-core") {
                    for (saturation, tracers) in kinds {
                        let bench = NatsBench(url: nats, python: peer, workload: brokerWorkload(saturation, messages: natsMessages, placement: placement(jetStream ? "nats-jetstream" : "nats-core")), tracers: tracers, fastStreamMessages: fastStreamMessages)
                        report.add(
                            broker: jetStream ? "NATS JetStream" : "NATS core", saturation: saturation,
                            title: bench.title(jetStream: jetStream),
                            rows: try await bench.run(jetStream: jetStream, rounds: brokerRounds)
                        )
                    }
                }
            }
            if let kafka = kafka ?? environment["COURIER_KAFKA_URL"], kafka != "none", tables.contains("kafka") {
                for (saturation, tracers) in kinds {
                    // A Kafka round trip takes milliseconds here (see KafkaBench.fetchWaitMilliseconds).
                    let bench = KafkaBench(url: kafka, python: peer, workload: brokerWorkload(saturation, messages: kafkaMessages, latencyMessagesAtMost: 500, placement: placement("kafka")), tracers: tracers, fastStreamMessages: fastStreamMessages)
                    report.add(
                        broker: "Kafka", saturation: saturation, title: bench.title, rows: try await bench.run(rounds: brokerRounds),
                        peer: "confluent", peerColumn: "vs FastStream confluent traced"
                    )
                }
            }
            if let rabbit = rabbit ?? environment["COURIER_RABBIT_URL"], rabbit != "none", tables.contains("rabbitmq") {
                for (saturation, tracers) in kinds {
                    let bench = RabbitBench(url: rabbit, python: peer, workload: brokerWorkload(saturation, messages: rabbitMessages, placement: placement("rabbitmq")), tracers: tracers, fastStreamMessages: fastStreamMessages)
                    report.add(broker: "RabbitMQ", saturation: saturation, title: bench.title, rows: try await bench.run(rounds: brokerRounds))
                }
            }
            if backlog > 0 && childRow == nil {
                report.backlog = await BacklogBench(
                    messages: backlog,
                    kafkaMessages: kafkaBacklog,
                    redis: (redis ?? environment["COURIER_REDIS_URL"]).flatMap { $0 == "none" ? nil : $0 },
                    nats: (nats ?? environment["COURIER_NATS_URL"]).flatMap { $0 == "none" ? nil : $0 },
                    kafka: (kafka ?? environment["COURIER_KAFKA_URL"]).flatMap { $0 == "none" ? nil : $0 },
                    rabbit: (rabbit ?? environment["COURIER_RABBIT_URL"]).flatMap { $0 == "none" ? nil : $0 }
                ).run()
            }
            await otelGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        await tracing.stop()
        if let childRow {
            // The one row this process ran, with the peak of its whole life: start-up, the row,
            // the tracers' last export.
            guard report.tables.count == 1, var row = report.tables[0].rows.first, report.tables[0].rows.count == 1 else {
                throw BenchError("--child-row \(childRow): \(report.tables.reduce(0) { $0 + $1.rows.count }) rows ran in --tables \(tables) --workloads \(workloads), not one")
            }
            row.peakRSS = PeakRSS.mebibytes()
            print(try ChildRowResult(row: row, tracers: tracing.tracerCounts).encoded())
            return
        }
        report.exports = tracing.summary(adding: processes?.tracerCounts ?? [])
        print(report.markdown)
        try report.write(json: json, chart: chart)
        FileHandle.standardError.write(Data("courier-bench: results in \(json), chart in \(chart)\n".utf8))
    }

    /// A broker table's workload. Latency: a tenth of `messages` (at most `--warmup`) as warm-up,
    /// then `messages` published one after another, then `--latency-messages` (at most
    /// `latencyCap`) one at a time. Saturation: `--saturation-messages` from `--publishers`
    /// concurrent publishers.
    private func brokerWorkload(_ saturation: Bool, messages: Int, latencyMessagesAtMost latencyCap: Int = 1_000, placement: RowPlacement) -> BrokerWorkload {
        if saturation {
            return BrokerWorkload(
                messages: saturationMessages, warmup: min(warmup, saturationMessages / 10), latencyMessages: 0, publishers: publishers,
                rowFilter: rows, placement: placement
            )
        }
        return BrokerWorkload(
            messages: messages, warmup: min(warmup, messages / 10), latencyMessages: min(latencyMessages, latencyCap), rowFilter: rows,
            placement: placement
        )
    }

    /// The options of a row's own process: this run's counts and servers, one run per process, no
    /// FastStream rows and no backlog check (this process runs those), spans to `otlpEndpoint`.
    /// Servers taken from the environment reach the child through its environment.
    private func childArguments(otlpEndpoint: String) -> [String] {
        var arguments = [
            "--messages", String(messages), "--warmup", String(warmup), "--rounds", "1", "--latency-messages", String(latencyMessages),
            "--publishers", String(publishers), "--saturation-messages", String(saturationMessages),
            "--fast-stream-messages", String(fastStreamMessages), "--redis-messages", String(redisMessages),
            "--nats-messages", String(natsMessages), "--kafka-messages", String(kafkaMessages), "--rabbit-messages", String(rabbitMessages),
            "--kafka-backlog", String(kafkaBacklog), "--broker-rounds", "1", "--backlog", "0", "--python", "none",
            "--otlp-endpoint", otlpEndpoint,
        ]
        for (option, url) in [("--redis", redis), ("--nats", nats), ("--kafka", kafka), ("--rabbit", rabbit)] {
            if let url { arguments += [option, url] }
        }
        return arguments
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

    /// Arrivals so far.
    var received: Int { state.withLock { $0.received } }

    /// Waits for the last message, as ``waitForAll()``; a run that stops receiving for
    /// `stallLimit` fails with what it got (a lost message is a failure to report, not a bench
    /// that never ends).
    func waitForAll(_ name: String, stallLimit: Duration = .seconds(30)) async throws -> Duration {
        try await withThrowingTaskGroup(of: Duration?.self) { group in
            group.addTask { await self.waitForAll() }
            group.addTask {
                var last = -1
                while self.received != last {
                    last = self.received
                    try await Task.sleep(for: stallLimit)
                }
                return nil
            }
            defer { group.cancelAll() }
            guard let elapsed = try await group.next() ?? nil else {
                throw BenchError("\(name): nothing arrived for \(stallLimit); \(received) of \(expected) arrived")
            }
            return elapsed
        }
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

/// Markdown tables.
enum Row {
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
