import Courier
import CourierChildProcess
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation
import Synchronization
import Testing
import Tracing

/// Issue 24: three instances of one service (`courier-worker`, a process each) share one stream of
/// messages on every broker; one is killed mid-stream.
@Suite("Scale-out: three service processes share the work, one is killed")
struct ScaleOutTopologyTests {
    /// A running `courier-worker` and what it printed it handled.
    final class Worker: Sendable {
        let name: String
        let process: ChildProcess

        init(_ broker: String, url: String, source: String, name: String) async throws {
            self.name = name
            let executable = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/courier-worker").path
            process = try ChildProcess(executable, [broker, url, source, name], output: .captureStandardOutput(errorPath: nil))
            let ready = await process.waitForOutput(containing: "READY")
            try #require(ready && process.isRunning, "\(name) did not start: \(process.output.suffix(2000))")
        }

        /// `(number, trace id)` of each message it handled, in order.
        var handled: [(Int, String)] {
            process.output.split(separator: "\n").compactMap { line in
                let words = line.split(separator: " ")
                guard words.count == 3, words[0] == "handled", let number = Int(words[1]) else { return nil }
                return (number, String(words[2]))
            }
        }
    }

    enum Kind: String, CaseIterable, Sendable {
        case redis, nats, kafka, rabbitmq
    }

    @Test("every message handled at least once across the survivors, none stuck; counts per process, duplicates, one trace per message", arguments: Kind.allCases)
    func oneOfThreeKilled(_ kind: Kind) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let telemetry = TelemetryMiddleware(tracer: tracer)
        let source = "courier-scale-\(kind.rawValue)-\(UUID().uuidString.prefix(8).lowercased())"
        let url: String
        let publish: @Sendable (Int) async throws -> Void
        let close: @Sendable () async -> Void
        switch kind {
        case .redis:
            url = RedisTestServer.url
            let broker = try RedisBroker(url: url, middlewares: [telemetry])
            publish = { try await broker.publish($0, to: .stream(source)) }
            close = { await broker.transport.close() }
        case .nats:
            url = NatsTestServer.url
            let broker = try NatsBroker(url: url, middlewares: [telemetry])
            try await broker.declareStream(NatsStream(source, subjects: ["\(source).>"]))
            publish = { try await broker.publish($0, to: .jetStream("\(source).work")) }
            close = { await broker.transport.close() }
        case .kafka:
            url = KafkaTestServer.url
            let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [telemetry])
            try await broker.createTopic(source, partitions: 6)
            publish = { try await broker.publish($0, to: source, options: KafkaPublishOptions(key: "\($0)")) }
            close = { await broker.transport.close() }
        case .rabbitmq:
            url = ProcessInfo.processInfo.environment["COURIER_RABBIT_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
            let broker = try RabbitBroker(url: url, middlewares: [telemetry])
            try await broker.declareQueue(RabbitQueue(source, durable: true))
            publish = { try await broker.publish($0, to: source) }
            close = { await broker.transport.close() }
        }
        var workers: [Worker] = []
        for index in 1...3 { workers.append(try await Worker(kind.rawValue, url: url, source: source, name: "w\(index)")) }

        let messages = 600
        for number in 0..<(messages / 3) { try await publish(number) }
        // Mid-stream, once it has work (a Kafka member has its partitions only after the group
        // settled): the first instance dies with whatever it held.
        try await waitUntil(timeout: .seconds(30)) { workers[0].handled.count >= 10 }
        let killedHandledBeforeKill = workers[0].handled.count
        await workers[0].process.kill()
        for number in (messages / 3)..<messages { try await publish(number) }
        await close()

        // Every message comes through the survivors (a stream group's claim, a redelivery, a
        // rebalance, an ack wait) within the minute.
        let survivors = Array(workers.dropFirst())
        func handledNumbers() -> Set<Int> { Set(workers.flatMap { $0.handled.map(\.0) }) }
        try? await waitUntil(timeout: .seconds(60)) { handledNumbers().count >= messages && survivors.allSatisfy(\.process.isRunning) }
        let all = workers.flatMap(\.handled)
        let missing = Set(0..<messages).subtracting(handledNumbers())
        #expect(missing.isEmpty, "never handled: \(missing.sorted().prefix(20))")
        let perProcess = workers.map { $0.handled.count }
        #expect(perProcess[1] > 0 && perProcess[2] > 0, "both survivors took work: \(perProcess)")
        // One trace per message: each of its deliveries belongs to the trace its publish started.
        let sends = Set(tracer.finishedSpans.filter { $0.name.hasPrefix("send ") }.map(\.traceID))
        var traceOf: [Int: String] = [:]
        for (number, trace) in all {
            #expect(sends.contains(trace), "message \(number) in a trace no publish started")
            if let first = traceOf[number] { #expect(first == trace, "message \(number) in two traces") }
            traceOf[number] = trace
        }
        #expect(Set(traceOf.values).count == Set(traceOf.keys).count)
        for worker in workers.dropFirst() { await worker.process.kill() }
        ScaleOutResults.record(
            broker: kind.rawValue,
            perProcess: perProcess,
            killedHandledBeforeKill: killedHandledBeforeKill,
            duplicates: all.count - Set(all.map(\.0)).count,
            missing: missing.count,
            messages: messages
        )
    }
}
