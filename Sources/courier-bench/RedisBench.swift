import Courier
import CourierRedis
import Foundation
import NIOCore
import Tracing

/// The Redis rows of `make bench`: messages pushed into a list (one after another, or from many
/// concurrent publishers), a subscriber in the same process with a handler that does nothing;
/// for the raw RESP client, Courier and FastStream, tracing off and on, against the same
/// redis-server.
struct RedisBench {
    var url: String
    var python: String?
    var workload: BrokerWorkload
    var tracers: [BenchTracer]
    var fastStreamMessages: Int

    /// What a subscriber tuned for throughput prefetches (`BLMPOP … COUNT`): Courier's
    /// `.list(_:prefetch:)` and the raw client alike.
    static let saturationPrefetch = 100

    var title: String {
        workload.isSaturation
            ? """
            Redis list: \(workload.messages) messages of 64 bytes (FastStream: \(fastStreamMessages)) from \(workload.publishers) concurrent publishers on one
            connection, one subscriber in the same process popping up to \(Self.saturationPrefetch) at a time (`.list(_, prefetch: \(Self.saturationPrefetch))`;
            FastStream's list subscriber pops one at a time), a handler that does nothing.
            """
            : """
            Redis list: \(workload.messages) messages of 64 bytes published one after another, one subscriber in the same
            process, a handler that does nothing; latency: publish call to handler start, one message at a time.
            """
    }

    func run(rounds: Int) async throws -> [BrokerRow] {
        var rows = try await workload.interleaved(
            rounds: rounds,
            workload.scenarios(raw: raw, tracers: tracers) { try await courier($0, middlewares: $1) }
        )
        if let python, workload.selects("FastStream") {
            let workload = self.workload.isSaturation ? self.workload.with(messages: fastStreamMessages) : self.workload
            for tracing in [false, true] {
                rows.append(
                    try await workload.runFastStream(
                        BrokerWorkload.fastStreamRow(tracing: tracing),
                        python: python,
                        arguments: ["--broker", "redis", "--kind", "list", "--url", url, "--name", "faststream.bench.\(UUID().uuidString.prefix(8))"],
                        tracing: tracing
                    )
                )
            }
        }
        return rows
    }

    private func courier(_ name: String, middlewares: [any CourierMiddleware]) async throws -> BrokerRow {
        let list = "courier.bench.\(UUID().uuidString.prefix(8))"
        let broker = try RedisBroker(url: url, middlewares: middlewares)
        let source: RedisSource = workload.isSaturation ? .list(list, prefetch: Self.saturationPrefetch) : .list(list)
        return try await workload.runCourier(name, broker: broker, source: source) { payload in
            try await broker.publish(payload, to: .list(list))
        }
    }

    /// RPUSH of the envelope Courier would send (from every publisher on one connection, which
    /// pipelines them) and BLMPOP (BLPOP when one at a time) on a second connection: the ceiling.
    private func raw() async throws -> BrokerRow {
        let configuration = try RedisConfiguration(url: url)
        let list = "courier.bench.raw.\(UUID().uuidString.prefix(8))"
        let producer = try await RedisConnection.connect(configuration)
        let consumer = try await RedisConnection.connect(configuration)
        let envelope = try RedisEnvelope.encode(
            OutgoingMessage(body: ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)),
            allocator: ByteBufferAllocator()
        )
        let push = RedisCommand("RPUSH", [.string(list), .bytes(envelope)])
        let prefetch = workload.isSaturation ? Self.saturationPrefetch : 1
        let pop = RedisCommand("BLMPOP", ["0", "1", .string(list), "LEFT", "COUNT", .string(String(prefetch))])
        let probe = workload.makeProbe()
        let total = workload.warmup + workload.messages + workload.latencyMessages
        let name = workload.isSaturation ? "raw RESP client (pipelined RPUSH + BLMPOP COUNT \(prefetch))" : "raw RESP client (RPUSH + BLMPOP)"
        let row = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var received = 0
                while received < total {
                    // [key, [element…]]
                    guard case .array(let reply) = try await consumer.send(pop, timeout: .zero), reply.count == 2,
                        case .array(let elements) = reply[1]
                    else { throw BenchError("BLMPOP: an unexpected reply") }
                    probe.arrived(count: elements.count)
                    received += elements.count
                }
            }
            let row = try await workload.run(name, probe: probe) { _ = try await producer.send(push) }
            try await group.waitForAll()
            return row
        }
        await producer.close()
        await consumer.close()
        return row
    }
}
