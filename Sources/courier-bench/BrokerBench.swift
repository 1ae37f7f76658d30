import Courier
import Foundation
import NIOCore
import Synchronization
import Tracing

/// One row of a table: messages per second, end-to-end latency (latency workloads only) and the
/// peak resident memory of the process that ran it.
struct BrokerRow: Codable {
    var name: String
    var throughput: Double
    var p50: Double?
    var p99: Double?
    /// MiB: the high-water mark (`VmHWM`) of the process that ran only this row — a child
    /// courier-bench of its own (``RowProcesses``), or FastStream's Python; over several runs of
    /// the row, the highest.
    var peakRSS: Double?
    /// Why the row has no numbers (it failed; the rest of the run went on).
    var failure: String? = nil
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

    func arrived(count: Int) {
        for _ in 0..<count { arrived() }
    }

    func startMeasuringLatency() { measuringLatency.store(true, ordering: .relaxed) }

    /// Every arrival so far, warm-up and latency messages included.
    var total: Int { arrivalCount.load(ordering: .relaxed) }
}

/// How a row publishes one message: from Swift tasks, or (for a C client's blocking call) from
/// threads of its own, so a blocking publisher never holds a thread of Swift's cooperative pool.
enum Publish: Sendable {
    case async(@Sendable () async throws -> Void)
    case blocking(@Sendable () throws -> Void)
}

/// A workload every broker row runs. `publishers == 1`, the latency workload: `warmup + messages`
/// publishes one after another (the measured part timed from the end of warm-up to the last
/// arrival), then `latencyMessages` publishes one at a time, each timed from the publish call to
/// the handler. `publishers > 1`, the saturation workload: the same messages published by that
/// many concurrent publishers (tasks, or threads for a blocking C call), the subscriber tuned for
/// throughput, timed from the first measured publish to the last arrival; no latency part.
struct BrokerWorkload: Sendable {
    var messages: Int
    var warmup: Int
    var latencyMessages: Int
    var publishers: Int = 1
    /// `--rows`: only the rows whose names contain one of these (comma-separated) words; all when nil.
    var rowFilter: String? = nil
    /// Where the rows run: each in a child process of its own, or (in that child) here.
    var placement: RowPlacement = .inProcess(only: nil)

    var isSaturation: Bool { publishers > 1 }

    func makeProbe() -> ArrivalProbe { ArrivalProbe(messages: messages, warmup: warmup) }

    /// A workload of the same shape with another message count (FastStream's rows: a few
    /// thousand messages a second cannot move 100,000 in a bench run).
    func with(messages: Int) -> BrokerWorkload {
        var copy = self
        copy.messages = messages
        copy.warmup = min(warmup, max(1, messages / 10))
        return copy
    }

    func run(_ name: String, probe: ArrivalProbe, publish: Publish) async throws -> BrokerRow {
        FileHandle.standardError.write(Data("courier-bench: \(name)\n".utf8))
        try await publishAll(warmup, publish)
        await probe.counter.waitForWarmup()
        probe.counter.startClock()
        try await publishAll(messages, publish)
        let elapsed = try await waitForAll(name, probe)
        var latencies: [Duration] = []
        if latencyMessages > 0 {
            probe.startMeasuringLatency()
            var iterator = probe.arrivals.makeAsyncIterator()
            for _ in 0..<latencyMessages {
                let sent = ContinuousClock.now
                try await publishOne(publish)
                guard let received = await iterator.next() else { break }
                latencies.append(received - sent)
            }
        }
        // Every row moves exactly what it published: none lost, none twice.
        let expected = warmup + messages + latencyMessages
        guard probe.total == expected else {
            throw BenchError("\(name): the subscriber received \(probe.total) messages, not \(expected)")
        }
        return BrokerRow(
            name: name,
            throughput: Double(messages) / elapsed.seconds,
            p50: latencies.isEmpty ? nil : latencies.percentile(0.5),
            // The process's peak is taken when it has run the row to its end (``RowProcesses``).
            p99: latencies.isEmpty ? nil : latencies.percentile(0.99)
        )
    }

    func run(_ name: String, probe: ArrivalProbe, publish: @escaping @Sendable () async throws -> Void) async throws -> BrokerRow {
        try await run(name, probe: probe, publish: .async(publish))
    }

    private func waitForAll(_ name: String, _ probe: ArrivalProbe) async throws -> Duration {
        try await probe.counter.waitForAll(name)
    }

    private func publishOne(_ publish: Publish) async throws {
        switch publish {
        case .async(let body): try await body()
        case .blocking(let body): try body()
        }
    }

    /// Publishes `count` messages: one after another, or shared out among `publishers`.
    private func publishAll(_ count: Int, _ publish: Publish) async throws {
        guard count > 0 else { return }
        guard isSaturation else {
            for _ in 0..<count { try await publishOne(publish) }
            return
        }
        let shares = (0..<publishers).map { count / publishers + ($0 < count % publishers ? 1 : 0) }
        switch publish {
        case .async(let body):
            try await withThrowingTaskGroup(of: Void.self) { group in
                for share in shares where share > 0 {
                    group.addTask { for _ in 0..<share { try await body() } }
                }
                try await group.waitForAll()
            }
        case .blocking(let body):
            try await withThrowingTaskGroup(of: Void.self) { group in
                for share in shares where share > 0 {
                    group.addTask { try await onThread { for _ in 0..<share { try body() } } }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// Runs `body` on a thread of its own and returns its result: blocking C calls stay off Swift's
/// cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// This process's resident memory, from `/proc/self/status`: `VmHWM`, its high-water mark, and
/// `VmRSS`, its resident set now.
///
/// `VmHWM`, not `getrusage`'s `ru_maxrss`: a child started with `posix_spawn` (or `vfork`) shares
/// its parent's memory until it executes, and Linux carries that memory's high-water mark into the
/// new program's `ru_maxrss`, so a small child of a large parent reports the parent's peak. `VmHWM`
/// counts only the memory of the program now running.
enum PeakRSS {
    /// Lowers the high-water mark to the resident set now (`/proc/self/clear_refs`, "5"), so that a
    /// later peak minus ``currentMebibytes()`` read now is what grew since (the backlog check). It
    /// cannot tell a row's own peak: memory an earlier row freed stays resident in the allocator.
    static func reset() {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
        handle.write(Data("5".utf8))
        try? handle.close()
    }

    /// The high-water mark since the process started (or the last ``reset()``), in MiB (nil where
    /// /proc does not tell).
    static func mebibytes() -> Double? {
        value("VmHWM:")
    }

    /// The resident set now, in MiB.
    static func currentMebibytes() -> Double? {
        value("VmRSS:")
    }

    private static func value(_ key: String) -> Double? {
        // /proc files report a size of 0: read until the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/status"), let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        let status = String(decoding: data, as: UTF8.self)
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
            let kibibytes = line.dropFirst(key.count).split(whereSeparator: \.isWhitespace).first.flatMap { Double($0) }
            return kibibytes.map { $0 / 1024 }
        }
        return nil
    }
}

extension BrokerWorkload {
    /// Runs a Courier broker with the given subscriber for the duration of the workload.
    func runCourier<Transport: BrokerTransport>(
        _ name: String,
        broker: Broker<Transport>,
        source: Transport.Source,
        options: SubscriberOptions = SubscriberOptions(),
        publish: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) async throws -> BrokerRow {
        let probe = makeProbe()
        broker.subscriber(source, options: options) { (_: ByteBuffer, _) in probe.arrived() }
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

    /// The rows every broker table has, in order: the raw client (none in memory), then Courier
    /// untraced, with the no-op tracer and with each of `tracers` (`courier` runs one of them with
    /// its middlewares); only those `rowFilter` selects, and in a row's own process only that row.
    func scenarios(
        raw: (() async throws -> BrokerRow)?,
        tracers: [BenchTracer],
        courier: @escaping (_ name: String, _ middlewares: [any CourierMiddleware]) async throws -> BrokerRow
    ) -> [BenchScenario] {
        let rows: [BenchScenario] =
            (raw.map { [BenchScenario(name: "raw", run: $0)] } ?? [])
            + [
                BenchScenario(name: Self.untracedRow) { try await courier(Self.untracedRow, []) },
                BenchScenario(name: Self.noOpRow) { try await courier(Self.noOpRow, [TelemetryMiddleware(tracer: NoOpTracer())]) },
            ]
            + tracers.map { tracer in
                BenchScenario(name: "Courier, \(tracer.name)") { try await courier("Courier, \(tracer.name)", [TelemetryMiddleware(tracer: tracer.tracer)]) }
            }
        return rows.filter { selects($0.name) && placement.runs($0.name) }
    }

    /// Whether `--rows` selects the row named `name` (the raw client's row is "raw").
    func selects(_ name: String) -> Bool {
        rowFilter.map { filter in filter.split(separator: ",").contains { name.localizedCaseInsensitiveContains($0) } } ?? true
    }

    static let noOpRow = "Courier, TelemetryMiddleware with the no-op tracer"
    static let untracedRow = "Courier, no tracing"

    /// The name of a FastStream row.
    static func fastStreamRow(tracing: Bool) -> String {
        tracing ? "FastStream 0.7, tracing (SDK, batch)" : "FastStream 0.7, no tracing"
    }

    /// Runs each scenario `rounds` times, interleaved, so a slow moment of the machine hits every
    /// scenario alike; each row is the median of its runs (each number separately; its peak RSS,
    /// the highest). With ``RowPlacement/childProcesses(_:table:)`` every run is a process of its
    /// own, so each run's peak is its own.
    func interleaved(rounds: Int, _ scenarios: [BenchScenario]) async throws -> [BrokerRow] {
        var runs = Array(repeating: [BrokerRow](), count: scenarios.count)
        var failures: [Int: String] = [:]
        for _ in 0..<max(1, rounds) {
            for (index, scenario) in scenarios.enumerated() where failures[index] == nil {
                do {
                    switch placement {
                    case .inProcess:
                        runs[index].append(try await scenario.run())
                    case .childProcesses(let processes, let table):
                        runs[index].append(try await processes.run(row: scenario.name, table: table, saturation: isSaturation))
                    }
                } catch {
                    // One failed row is reported as failed; the rest of the run goes on.
                    FileHandle.standardError.write(Data("courier-bench: failed: \(error)\n".utf8))
                    failures[index] = "\(error)"
                }
            }
        }
        let failed = failures.sorted { $0.key < $1.key }.map { BrokerRow(name: String($0.value.prefix { $0 != ":" }), throughput: .nan, failure: $0.value) }
        return failed + runs.filter { !$0.isEmpty }.map { runs in
            func median(_ value: (BrokerRow) -> Double?) -> Double? {
                let values = runs.compactMap(value).sorted()
                return values.isEmpty ? nil : values[values.count / 2]
            }
            return BrokerRow(
                name: runs[0].name,
                throughput: median(\.throughput) ?? 0,
                p50: median(\.p50),
                p99: median(\.p99),
                peakRSS: runs.compactMap(\.peakRSS).max()
            )
        }
    }

    /// Runs Benchmarks/faststream_bench.py with the same workload; with `warmsUp`, its warm-up
    /// messages arrive before its clock starts, as they do here. Its peak RSS is the Python
    /// process's own, as the script measures it.
    func runFastStream(_ name: String, python: String, arguments: [String], tracing: Bool, warmsUp: Bool = false) async throws -> BrokerRow {
        FileHandle.standardError.write(Data("courier-bench: \(name)\n".utf8))
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/faststream_bench.py").path
        let scriptArguments = [
            script, "--messages", String(messages), "--latency-messages", String(latencyMessages), "--publishers", String(publishers),
        ]
            + (warmsUp ? ["--warmup", String(warmup)] : []) + arguments + (tracing ? ["--tracing"] : [])
        // Kept in a file rather than a pipe, which nobody would read while the run goes on.
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("faststream-bench-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: errors) }
        let run = try await ChildRun.run(python, scriptArguments, errorPath: errors.path)
        guard run.status == 0,
            let line = run.output.split(separator: "\n").last,
            let result = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double],
            let throughput = result["throughput"]
        else {
            let stderr = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            // The arguments hold the broker URL, and FastStream may echo it: no password leaves here.
            let scrubber = SecretScrubber(urls: arguments)
            throw BenchError(
                scrubber.scrub(
                    "the FastStream benchmark \(arguments.joined(separator: " ")) failed (exit \(run.status)): \(run.output)\(stderr.suffix(2_000))"
                )
            )
        }
        let expected = (warmsUp ? warmup : 0) + messages + latencyMessages
        if let received = result["received"], Int(received) != expected {
            throw BenchError("\(name): the FastStream subscriber received \(Int(received)) messages, not \(expected)")
        }
        return BrokerRow(name: name, throughput: throughput, p50: result["p50_us"], p99: result["p99_us"], peakRSS: result["peak_rss_mib"])
    }

    /// A broker table: every row against the raw client (the first row), Courier untraced and
    /// FastStream traced (the first traced FastStream row whose name contains `peer`).
    static func table(_ title: String, _ rows: [BrokerRow], peer: String = "", peerColumn: String = "vs FastStream traced") -> String {
        let raw = rows.first { $0.name.hasPrefix("raw") && $0.failure == nil }
        let untraced = rows.first { $0.name == untracedRow }
        let fastStreamTraced = rows.first {
            $0.name.hasPrefix("FastStream") && $0.name.contains("tracing (") && (peer.isEmpty || $0.name.contains(peer))
        }
        let latency = rows.contains { $0.p50 != nil }
        func ratio(_ row: BrokerRow, _ base: BrokerRow?, decimals: Int) -> String {
            base.map { Row.format(row.throughput / $0.throughput, decimals: decimals) + "×" } ?? "-"
        }
        // Each column: its header and its cell for a row; columns without a reference row are left out.
        var columns: [(String, (BrokerRow) -> String)] = [("scenario", \.name), ("msg/s", { Row.format($0.throughput, decimals: 0) })]
        if let raw { columns.append(("vs raw", { ratio($0, raw, decimals: 2) })) }
        if let untraced { columns.append(("vs untraced", { $0.name.hasPrefix("Courier") ? ratio($0, untraced, decimals: 2) : "-" })) }
        if let fastStreamTraced { columns.append((peerColumn, { ratio($0, fastStreamTraced, decimals: 1) })) }
        if latency {
            columns.append(("p50 µs", { $0.p50.map { Row.format($0, decimals: 1) } ?? "-" }))
            columns.append(("p99 µs", { $0.p99.map { Row.format($0, decimals: 1) } ?? "-" }))
        }
        columns.append(("peak RSS MiB", { $0.peakRSS.map { Row.format($0, decimals: 0) } ?? "-" }))
        let lines = [columns.map(\.0)] + rows.map { row in
            row.failure.map { failure in [row.name, "failed: " + failure] + Array(repeating: "-", count: columns.count - 2) } ?? columns.map { $0.1(row) }
        }
        return "\n" + title + "\n\n" + Row.render(lines)
    }
}

/// A tracer a row traces with, and how the table names it.
struct BenchTracer {
    var name: String
    var tracer: any Tracer
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
