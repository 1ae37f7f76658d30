@_spi(BrokerModule) import Courier
import CourierRabbit
import Foundation
import NIOCore
import Tracing

/// The RabbitMQ rows of `make bench`: N publishes of 64 bytes to a fresh durable queue through the
/// default exchange, one after another, each waiting for its publisher confirm, consumed by a
/// subscriber in the same process (prefetch 1, an ack after a handler that does nothing); for
/// Courier's AMQP client alone, Courier and FastStream (aio-pika), tracing off and on, against
/// the same node.
///
/// Every run declares a queue of its own, `courier-bench-<row>-<id>`, and deletes it afterwards,
/// so no row reads what another left behind. Each row's warm-up has arrived before its clock
/// starts.
struct RabbitBench {
    var url: String
    var python: String?
    var workload: BrokerWorkload
    var tracers: [BenchTracer]
    var fastStreamMessages: Int

    /// The consumers' `basic.qos` prefetch, the same for every client so every row settles the same
    /// way: one after another, what Courier asks for with a subscriber of concurrency 1; at
    /// saturation, what a user tuning for throughput sets (`RabbitSource.prefetch`, FastStream's
    /// `Channel(prefetch_count=)`).
    var prefetch: UInt16 { workload.isSaturation ? 256 : 1 }

    var title: String {
        workload.isSaturation
            ? """
            RabbitMQ: \(workload.messages) messages of 64 bytes (FastStream: \(fastStreamMessages)) from \(workload.publishers) concurrent publishers to a fresh durable
            queue through the default exchange, each waiting for its publisher confirm; one subscriber in the same process
            (prefetch \(prefetch)) acking each message after a handler that does nothing.
            """
            : """
            RabbitMQ: \(workload.messages) publishes of 64 bytes one after another to a fresh durable queue through the default
            exchange, each waiting for its publisher confirm; one subscriber in the same process (prefetch \(prefetch)) acking
            each message after a handler that does nothing; latency: publish call to handler start, one at a time.
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
                    try await withFreshQueue("faststream") { queue in
                        try await workload.runFastStream(
                            BrokerWorkload.fastStreamRow(tracing: tracing),
                            python: python,
                            arguments: ["--broker", "rabbit", "--kind", "queue", "--url", url, "--name", queue, "--prefetch", String(prefetch)],
                            tracing: tracing,
                            warmsUp: true
                        )
                    }
                )
            }
        }
        return rows
    }

    /// Runs `body` with the name of a queue no run used before, and deletes that queue afterwards
    /// (on failure too, as far as the node lets it).
    private func withFreshQueue(_ row: String, _ body: (String) async throws -> BrokerRow) async throws -> BrokerRow {
        let queue = "courier-bench-\(row)-\(UUID().uuidString.prefix(8).lowercased())"
        let result: BrokerRow
        do {
            result = try await body(queue)
        } catch {
            try? await deleteQueue(queue)
            throw error
        }
        try await deleteQueue(queue)
        return result
    }

    /// Deletes `queue` on a connection of its own: a Courier broker closes its transport when it stops.
    private func deleteQueue(_ queue: String) async throws {
        let admin = RabbitTransport(configuration: try RabbitConfiguration(url: url))
        do {
            try await admin.deleteQueue(queue)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
    }

    // MARK: - Courier

    /// A durable queue the subscriber declares, published to through the default exchange, the
    /// publishing channel in confirm mode as Courier always runs it.
    private func courier(_ name: String, middlewares: [any CourierMiddleware]) async throws -> BrokerRow {
        try await withFreshQueue("courier") { queue in
            let broker = try RabbitBroker(url: url, middlewares: middlewares)
            let source = RabbitSource.queue(RabbitQueue(queue), prefetch: workload.isSaturation ? Int(prefetch) : nil)
            return try await workload.runCourier(name, broker: broker, source: source) { payload in
                try await broker.publish(payload, to: .queue(queue))
            }
        }
    }

    // MARK: - The AMQP client alone

    /// Courier's own AMQP client and nothing else, on one connection as Courier and FastStream
    /// use one: a channel in confirm mode publishing the bare 64 bytes (`mandatory`, default
    /// properties), each publish waiting for its confirm; a second channel consuming the queue with
    /// the same prefetch, acking each delivery: the ceiling.
    private func raw() async throws -> BrokerRow {
        try await withFreshQueue("raw") { queue in
            let connection = try await AMQPConnection.connect(try RabbitConfiguration(url: url))
            do {
                let row = try await raw(queue: queue, connection: connection)
                await connection.close()
                return row
            } catch {
                await connection.close()
                throw error
            }
        }
    }

    private func raw(queue: String, connection: AMQPConnection) async throws -> BrokerRow {
        let publisher = try await connection.openChannel()
        try await publisher.selectConfirms()
        let consumer = try await connection.openChannel()
        try await consumer.call(.queueDeclare(queue: queue, passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: [:]))
        try await consumer.call(.basicQos(prefetchSize: 0, prefetchCount: prefetch, global: false))
        let deliveries = try await consumer.consume(queue: queue, tag: "courier-bench-raw")
        let probe = workload.makeProbe()
        let total = workload.warmup + workload.messages + workload.latencyMessages
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            // A failed publish cancels this task, and a cancelled wait for deliveries returns nil.
            group.addTask {
                var received = 0
                while received < total, let taken = await deliveries.next() {
                    for delivery in taken {
                        probe.arrived()
                        consumer.ack(delivery.deliveryTag)
                    }
                    received += taken.count
                }
            }
            let row = try await workload.run("raw AMQP client (publish + confirm, consume + ack)", probe: probe) {
                try await publisher.publish(routingKey: queue, body: payload)
            }
            try await group.waitForAll()
            return row
        }
    }
}
