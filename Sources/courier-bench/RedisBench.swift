import Courier
import CourierRedis
import Foundation
import NIOCore
import Tracing

/// The Redis rows of `make bench`: one workload (publish N messages into a list one after another,
/// a subscriber in the same process with a handler that does nothing) for the raw RESP client,
/// Courier and FastStream, tracing off and on, against the same redis-server.
struct RedisBench {
    var url: String
    var python: String?
    var workload: BrokerWorkload
    var tracer: any Tracer

    func run(rounds: Int) async throws -> [BrokerRow] {
        var rows = try await BrokerWorkload.interleaved(
            rounds: rounds,
            BrokerWorkload.scenarios(raw: raw, tracer: tracer) { try await courier($0, middlewares: $1) }
        )
        if let python {
            for tracing in [false, true] {
                rows.append(
                    try workload.runFastStream(
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
        return try await workload.runCourier(name, broker: broker, source: .list(list)) { payload in
            try await broker.publish(payload, to: .list(list))
        }
    }

    /// RPUSH and BLPOP of the envelope Courier would send, on two connections: the ceiling.
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
        let pop = RedisCommand("BLPOP", [.string(list), "0"])
        let probe = workload.makeProbe()
        let pops = workload.warmup + workload.messages + workload.latencyMessages
        let row = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<pops {
                    _ = try await consumer.send(pop, timeout: .zero)
                    probe.arrived()
                }
            }
            let row = try await workload.run("raw RESP client (RPUSH + BLPOP)", probe: probe) { _ = try await producer.send(push) }
            try await group.waitForAll()
            return row
        }
        await producer.close()
        await consumer.close()
        return row
    }
}
