import Courier
import CourierRedis
import Foundation
import NIOCore
import OTel
import Synchronization
import Tracing

/// The Redis rows of `make bench`: one workload (publish N messages into a list one after another,
/// a subscriber in the same process with a handler that does nothing) for the raw RESP client,
/// Courier and FastStream, tracing off and on, against the same redis-server.
struct RedisBench {
    var url: String
    var python: String?
    var messages: Int
    var warmup: Int
    var latencyMessages: Int
    var tracer: any Tracer

    struct Row {
        var name: String
        var throughput: Double
        var p50: Double
        var p99: Double
    }

    func run() async throws -> [Row] {
        var rows: [Row] = []
        rows.append(try await raw())
        rows.append(try await courier("Courier, no tracing", middlewares: []))
        rows.append(try await courier("Courier, TelemetryMiddleware with the no-op tracer", middlewares: [TelemetryMiddleware(tracer: NoOpTracer())]))
        rows.append(try await courier("Courier, tracing (swift-otel, always on, batch)", middlewares: [TelemetryMiddleware(tracer: tracer)]))
        if let python {
            rows.append(try fastStream("FastStream 0.7, no tracing", python: python, tracing: false))
            rows.append(try fastStream("FastStream 0.7, tracing (SDK, batch)", python: python, tracing: true))
        }
        return rows
    }

    // MARK: - Courier

    private func courier(_ name: String, middlewares: [any CourierMiddleware]) async throws -> Row {
        let list = "courier.bench.\(UUID().uuidString.prefix(8))"
        let broker = try RedisBroker(url: url, middlewares: middlewares)
        let counter = ArrivalCounter(expected: warmup + messages, warmup: warmup)
        let (arrivals, arrived) = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
        let measuringLatency = Atomic<Bool>(false)
        broker.subscriber(.list(list)) { (_: ByteBuffer, _) in
            if measuringLatency.load(ordering: .relaxed) { arrived.yield(.now) } else { counter.arrived() }
        }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        var elapsed = Duration.zero
        var latencies: [Duration] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            await broker.waitUntilSubscribed()
            for index in 0..<(warmup + messages) {
                if index == warmup {
                    await counter.waitForWarmup()
                    counter.startClock()
                }
                try await broker.publish(payload, to: .list(list))
            }
            elapsed = await counter.waitForAll()
            measuringLatency.store(true, ordering: .relaxed)
            var iterator = arrivals.makeAsyncIterator()
            for _ in 0..<latencyMessages {
                let sent = ContinuousClock.now
                try await broker.publish(payload, to: .list(list))
                guard let received = await iterator.next() else { break }
                latencies.append(received - sent)
            }
            await broker.stopIntake()
            try await group.waitForAll()
        }
        return Row(name: name, throughput: Double(messages) / elapsed.seconds, p50: latencies.percentile(0.5), p99: latencies.percentile(0.99))
    }

    // MARK: - The RESP client alone

    /// RPUSH and BLPOP of the envelope Courier would send, on two connections: the ceiling.
    private func raw() async throws -> Row {
        let configuration = try RedisConfiguration(url: url)
        let list = "courier.bench.raw.\(UUID().uuidString.prefix(8))"
        let producer = try await RedisConnection.connect(configuration)
        let consumer = try await RedisConnection.connect(configuration)
        let envelope = try RedisEnvelope.encode(
            OutgoingMessage(body: ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)),
            allocator: ByteBufferAllocator()
        )
        let push = RedisCommand("RPUSH", [.string(list), .bytes(envelope)])
        let pop = RedisCommand("BLPOP", [.string(list), "0"])
        let total = warmup + messages

        let counter = ArrivalCounter(expected: total, warmup: warmup)
        let (arrivals, arrived) = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
        var elapsed = Duration.zero
        var latencies: [Duration] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for index in 0..<(total + latencyMessages) {
                    _ = try await consumer.send(pop, timeout: .zero)
                    if index < total { counter.arrived() } else { arrived.yield(.now) }
                }
            }
            for index in 0..<total {
                if index == warmup {
                    await counter.waitForWarmup()
                    counter.startClock()
                }
                _ = try await producer.send(push)
            }
            elapsed = await counter.waitForAll()
            var iterator = arrivals.makeAsyncIterator()
            for _ in 0..<latencyMessages {
                let sent = ContinuousClock.now
                _ = try await producer.send(push)
                guard let received = await iterator.next() else { break }
                latencies.append(received - sent)
            }
            try await group.waitForAll()
        }
        await producer.close()
        await consumer.close()
        return Row(name: "raw RESP client (RPUSH + BLPOP)", throughput: Double(messages) / elapsed.seconds, p50: latencies.percentile(0.5), p99: latencies.percentile(0.99))
    }

    // MARK: - FastStream

    private func fastStream(_ name: String, python: String, tracing: Bool) throws -> Row {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/faststream_redis_bench.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, "--url", url, "--list", "faststream.bench.\(UUID().uuidString.prefix(8))",
            "--messages", String(messages), "--latency-messages", String(latencyMessages),
        ] + (tracing ? ["--tracing"] : [])
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double],
            let throughput = result["throughput"], let p50 = result["p50_us"], let p99 = result["p99_us"]
        else {
            throw BenchError("the FastStream benchmark failed (exit \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))")
        }
        return Row(name: name, throughput: throughput, p50: p50, p99: p99)
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
