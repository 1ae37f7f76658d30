import Courier
import Foundation
import NIOCore
import Synchronization
import Tracing

/// One row of a broker table: messages per second and end-to-end latency.
struct BrokerRow {
    var name: String
    var throughput: Double
    var p50: Double
    var p99: Double
}

/// What a broker workload's consumer reports: arrivals counted while throughput is measured,
/// arrival instants while latency is.
final class ArrivalProbe: Sendable {
    let counter: ArrivalCounter
    let arrivals: AsyncStream<ContinuousClock.Instant>
    private let continuation: AsyncStream<ContinuousClock.Instant>.Continuation
    private let measuringLatency = Atomic<Bool>(false)
    private let arrivalCount = Atomic<Int>(0)

    init(messages: Int, warmup: Int) {
        counter = ArrivalCounter(expected: warmup + messages, warmup: warmup)
        (arrivals, continuation) = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
    }

    func arrived() {
        arrivalCount.add(1, ordering: .relaxed)
        if measuringLatency.load(ordering: .relaxed) { continuation.yield(.now) } else { counter.arrived() }
    }

    func startMeasuringLatency() { measuringLatency.store(true, ordering: .relaxed) }

    /// Every arrival so far, warm-up and latency messages included.
    var total: Int { arrivalCount.load(ordering: .relaxed) }
}

/// The workload every broker row runs: `warmup + messages` publishes one after another (the
/// measured part timed from the end of warm-up to the last arrival), then `latencyMessages`
/// publishes one at a time, each timed from the publish call to the handler.
struct BrokerWorkload {
    var messages: Int
    var warmup: Int
    var latencyMessages: Int

    func makeProbe() -> ArrivalProbe { ArrivalProbe(messages: messages, warmup: warmup) }

    func run(_ name: String, probe: ArrivalProbe, publish: () async throws -> Void) async throws -> BrokerRow {
        FileHandle.standardError.write(Data("courier-bench: \(name)\n".utf8))
        for index in 0..<(warmup + messages) {
            if index == warmup {
                await probe.counter.waitForWarmup()
                probe.counter.startClock()
            }
            try await publish()
        }
        let elapsed = await probe.counter.waitForAll()
        probe.startMeasuringLatency()
        var latencies: [Duration] = []
        var iterator = probe.arrivals.makeAsyncIterator()
        for _ in 0..<latencyMessages {
            let sent = ContinuousClock.now
            try await publish()
            guard let received = await iterator.next() else { break }
            latencies.append(received - sent)
        }
        // Every row moves exactly what it published: none lost, none twice.
        let expected = warmup + messages + latencyMessages
        guard probe.total == expected else {
            throw BenchError("\(name): the subscriber received \(probe.total) messages, not \(expected)")
        }
        return BrokerRow(name: name, throughput: Double(messages) / elapsed.seconds, p50: latencies.percentile(0.5), p99: latencies.percentile(0.99))
    }

    /// Runs a Courier broker with the given subscriber for the duration of the workload.
    func runCourier<Transport: BrokerTransport>(
        _ name: String,
        broker: Broker<Transport>,
        source: Transport.Source,
        publish: @escaping (ByteBuffer) async throws -> Void
    ) async throws -> BrokerRow {
        let probe = makeProbe()
        broker.subscriber(source) { (_: ByteBuffer, _) in probe.arrived() }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            await broker.waitUntilSubscribed()
            let row = try await run(name, probe: probe) { try await publish(payload) }
            await broker.stopIntake()
            try await group.waitForAll()
            return row
        }
    }

    /// The rows every broker table has, in order: the raw client, then Courier untraced, with
    /// the no-op tracer and with swift-otel (`courier` runs one of them with its middlewares).
    static func scenarios(
        raw: @escaping () async throws -> BrokerRow,
        tracer: any Tracer,
        courier: @escaping (_ name: String, _ middlewares: [any CourierMiddleware]) async throws -> BrokerRow
    ) -> [() async throws -> BrokerRow] {
        [
            raw,
            { try await courier("Courier, no tracing", []) },
            { try await courier("Courier, TelemetryMiddleware with the no-op tracer", [TelemetryMiddleware(tracer: NoOpTracer())]) },
            { try await courier("Courier, tracing (swift-otel, always on, batch)", [TelemetryMiddleware(tracer: tracer)]) },
        ]
    }

    /// The name of a FastStream row.
    static func fastStreamRow(tracing: Bool) -> String {
        tracing ? "FastStream 0.7, tracing (SDK, batch)" : "FastStream 0.7, no tracing"
    }

    /// Runs each scenario `rounds` times, interleaved, so a slow moment of the machine hits every
    /// scenario alike; each row is the median of its runs (throughput, p50 and p99 separately).
    static func interleaved(rounds: Int, _ scenarios: [() async throws -> BrokerRow]) async throws -> [BrokerRow] {
        var runs = Array(repeating: [BrokerRow](), count: scenarios.count)
        for _ in 0..<max(1, rounds) {
            for (index, scenario) in scenarios.enumerated() {
                runs[index].append(try await scenario())
            }
        }
        return runs.map { runs in
            func median(_ value: (BrokerRow) -> Double) -> Double { runs.map(value).sorted()[runs.count / 2] }
            return BrokerRow(name: runs[0].name, throughput: median(\.throughput), p50: median(\.p50), p99: median(\.p99))
        }
    }

    /// Runs Benchmarks/faststream_bench.py with the same workload; with `warmsUp`, its warm-up
    /// messages arrive before its clock starts, as they do here.
    func runFastStream(_ name: String, python: String, arguments: [String], tracing: Bool, warmsUp: Bool = false) throws -> BrokerRow {
        FileHandle.standardError.write(Data("courier-bench: \(name)\n".utf8))
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/faststream_bench.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--messages", String(messages), "--latency-messages", String(latencyMessages)]
            + (warmsUp ? ["--warmup", String(warmup)] : []) + arguments + (tracing ? ["--tracing"] : [])
        let output = Pipe()
        process.standardOutput = output
        // Kept in a file rather than a pipe, which nobody would read while the run goes on.
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("faststream-bench-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: errors)
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardError = errorHandle
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? errorHandle.close()
        guard process.terminationStatus == 0,
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double],
            let throughput = result["throughput"], let p50 = result["p50_us"], let p99 = result["p99_us"]
        else {
            let stderr = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            // The arguments hold the broker URL, and FastStream may echo it: no password leaves here.
            let scrubber = SecretScrubber(urls: arguments)
            throw BenchError(
                scrubber.scrub(
                    "the FastStream benchmark \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))\(stderr.suffix(2_000))"
                )
            )
        }
        let expected = (warmsUp ? warmup : 0) + messages + latencyMessages
        if let received = result["received"], Int(received) != expected {
            throw BenchError("\(name): the FastStream subscriber received \(Int(received)) messages, not \(expected)")
        }
        return BrokerRow(name: name, throughput: throughput, p50: p50, p99: p99)
    }

    /// A broker table: every row against the raw client (the first row) and FastStream traced
    /// (the first traced FastStream row whose name contains `peer`).
    static func table(_ title: String, _ rows: [BrokerRow], peer: String = "", peerColumn: String = "vs FastStream traced") -> String {
        let raw = rows[0]
        let fastStreamTraced = rows.first {
            $0.name.hasPrefix("FastStream") && $0.name.contains("tracing (") && (peer.isEmpty || $0.name.contains(peer))
        }
        var lines = [["scenario", "msg/s", "vs raw", peerColumn, "p50 µs", "p99 µs"]]
        for row in rows {
            lines.append([
                row.name,
                Row.format(row.throughput, decimals: 0),
                Row.format(row.throughput / raw.throughput, decimals: 2) + "×",
                fastStreamTraced.map { Row.format(row.throughput / $0.throughput, decimals: 1) + "×" } ?? "-",
                Row.format(row.p50, decimals: 1),
                Row.format(row.p99, decimals: 1),
            ])
        }
        return "\n" + title + "\n\n" + Row.render(lines)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension [Duration] {
    /// The latency below which `fraction` of these fall, in microseconds.
    func percentile(_ fraction: Double) -> Double {
        let sorted = self.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))].seconds * 1e6
    }
}
