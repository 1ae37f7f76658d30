import CKafka
import Courier
import CourierKafka
import Foundation
import NIOCore
import Synchronization
import Tracing

/// The Kafka rows of `make bench`: N publishes to a fresh one-partition topic one after another,
/// each waiting for the broker's acknowledgement, consumed by a subscriber in the same process
/// with a handler that does nothing; for librdkafka alone, Courier and FastStream (aiokafka and
/// librdkafka), tracing off and on, against the same server.
///
/// Every consumer reads without a group where it can (librdkafka alone, Courier and
/// `faststream.kafka` take the topic's partitions at once); `faststream.confluent` always joins a
/// group, a fresh one with a one-second session (tansu holds a join for half the session timeout).
/// Each row's warm-up has arrived before its clock starts, so the join is never timed.
struct KafkaBench {
    var url: String
    var python: String?
    var workload: BrokerWorkload
    var tracers: [BenchTracer]
    var fastStreamMessages: Int

    var title: String {
        workload.isSaturation
            ? """
            Kafka on tansu: \(workload.messages) records of 64 bytes (FastStream: \(fastStreamMessages)) from \(workload.publishers) concurrent publishers to a fresh
            topic of one partition, each waiting for the broker's acknowledgement (linger.ms=0 everywhere: with every publisher
            waiting, a linger only delays); one subscriber in the same process (no consumer group; faststream.confluent: a fresh
            group), fetch.wait.max.ms=\(Self.saturationFetchWaitMilliseconds) (tansu lists a partition's batches within it), a handler that does nothing.
            """
            : """
            Kafka on tansu: \(workload.messages) publishes of 64 bytes one after another to a fresh topic of one partition, each
            waiting for the broker's acknowledgement (raw and FastStream: linger.ms=0; Courier: its own settings); one
            subscriber in the same process (no consumer group; faststream.confluent: a fresh group, joined during warm-up)
            with a handler that does nothing, every consumer at fetch.wait.max.ms=\(Self.fetchWaitMilliseconds) (tansu answers a waiting
            fetch as its wait ends, which dominates latency); latency: publish call to handler start, one at a time.
            """
    }

    /// `fetch.wait.max.ms` of every consumer in the latency rows. tansu does not answer a waiting
    /// fetch when a record arrives, so with librdkafka's and FastStream's default of 500 ms every
    /// one-at-a-time round trip takes hundreds of milliseconds: tansu's timer, not the clients. A
    /// real Kafka answers at once.
    static let fetchWaitMilliseconds = 10

    /// `fetch.wait.max.ms` at saturation and for the backlog. tansu's in-memory storage reads a
    /// fetch by listing every batch of the partition from its first, within the time left of
    /// the fetch's wait, and answers with no records, and no error, when the time runs out before
    /// it reached the offset asked for; at 10 ms a partition of some 10,000 batches (one record
    /// each, with linger.ms=0 and publishers waiting for each acknowledgement) is past that, and
    /// every fetch comes back empty for ever: the stall of every row, the bare librdkafka one
    /// included, that this table used to show. At 100 ms 50,000 records complete.
    static let saturationFetchWaitMilliseconds = 100

    /// The wait of this workload's consumers.
    var fetchWait: Int { workload.isSaturation ? Self.saturationFetchWaitMilliseconds : Self.fetchWaitMilliseconds }

    func run(rounds: Int) async throws -> [BrokerRow] {
        var rows = try await workload.interleaved(
            rounds: rounds,
            workload.scenarios(raw: raw, tracers: tracers) { try await courier($0, middlewares: $1) }
        )
        if let python, workload.selects("FastStream") {
            let workload = self.workload.isSaturation ? self.workload.with(messages: fastStreamMessages) : self.workload
            let servers = try KafkaConfiguration(url: url).bootstrapServers.joined(separator: ",")
            for (client, label) in [("kafka", "kafka (aiokafka)"), ("confluent", "confluent (librdkafka)")] {
                for tracing in [false, true] {
                    let id = UUID().uuidString.prefix(8)
                    var arguments = [
                        "--broker", client, "--kind", "topic", "--url", servers, "--name", "faststream.bench.\(id)",
                        "--fetch-wait-ms", String(fetchWait),
                    ]
                    if client == "confluent" { arguments += ["--group", "faststream-bench-\(id)"] }
                    rows.append(
                        try await workload.runFastStream(
                            "FastStream 0.7 \(label), " + (tracing ? "tracing (SDK, batch)" : "no tracing"),
                            python: python,
                            arguments: arguments,
                            tracing: tracing,
                            warmsUp: true
                        )
                    )
                }
            }
        }
        return rows
    }

    private static func topic(_ prefix: String) -> String {
        "\(prefix).bench.\(UUID().uuidString.prefix(8))"
    }

    // MARK: - Courier

    /// A fresh topic (Courier creates it with one partition), read from the beginning without a
    /// group; the producer as Courier configures it.
    private func courier(_ name: String, middlewares: [any CourierMiddleware]) async throws -> BrokerRow {
        let topic = Self.topic("courier")
        var configuration = try KafkaConfiguration(url: url)
        configuration.consumerProperties["fetch.wait.max.ms"] = String(fetchWait)
        let broker = KafkaBroker(configuration: configuration, middlewares: middlewares)
        return try await workload.runCourier(name, broker: broker, source: .topics(topic, start: .beginning)) { payload in
            try await broker.publish(payload, to: topic)
        }
    }

    // MARK: - librdkafka alone

    /// librdkafka's C API and nothing else: the bare 64 bytes produced with `acks=all` and
    /// `linger.ms=0` (as FastStream's producers send: at once), each publish waiting for its
    /// delivery report (served on a poll thread); a consumer assigned the topic's partition from
    /// the beginning, polled on a thread of its own: the ceiling.
    private func raw() async throws -> BrokerRow {
        let topic = Self.topic("raw")
        let servers = try KafkaConfiguration(url: url).bootstrapServers.joined(separator: ",")
        let producer = try RawKafkaProducer(servers: servers)
        do {
            try RawKafka.createTopic(topic, handle: producer.handle.pointer)
            let row = try await raw(topic: topic, servers: servers, producer: producer)
            await producer.close()
            return row
        } catch {
            await producer.close()
            throw error
        }
    }

    private func raw(topic: String, servers: String, producer: RawKafkaProducer) async throws -> BrokerRow {
        let consumer = try RawKafka.handle(
            RD_KAFKA_CONSUMER,
            [
                "bootstrap.servers": servers,
                // librdkafka wants a group id for a consumer even when it joins no group.
                "group.id": "raw-bench-\(UUID().uuidString.prefix(8))",
                "enable.auto.commit": "false",
                "enable.partition.eof": "false",
                "fetch.wait.max.ms": String(fetchWait),
            ]
        )
        rd_kafka_poll_set_consumer(consumer.pointer)
        let partitions = rd_kafka_topic_partition_list_new(1)!
        rd_kafka_topic_partition_list_add(partitions, topic, 0)!.pointee.offset = courier_kafka_offset_beginning
        let assigned = rd_kafka_assign(consumer.pointer, partitions)
        rd_kafka_topic_partition_list_destroy(partitions)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(consumer.pointer)
            throw BenchError("librdkafka assign: \(String(cString: rd_kafka_err2str(assigned)))")
        }

        let probe = workload.makeProbe()
        let total = workload.warmup + workload.messages + workload.latencyMessages
        let consumed = Latch()
        let stop = StopFlag()
        let thread = Thread {
            var received = 0
            while received < total && !stop.isSet {
                guard let message = rd_kafka_consumer_poll(consumer.pointer, 100) else { continue }
                if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    received += 1
                    probe.arrived()
                }
                rd_kafka_message_destroy(message)
            }
            rd_kafka_consumer_close(consumer.pointer)
            rd_kafka_destroy(consumer.pointer)
            consumed.open()
        }
        thread.start()
        do {
            let row = try await workload.run("raw librdkafka (produce + delivery report, consumer poll thread)", probe: probe) {
                try await producer.produce(topic: topic)
            }
            await consumed.wait()
            return row
        } catch {
            stop.set()
            await consumed.wait()
            throw error
        }
    }
}

/// librdkafka's producer alone: `acks=all`, `linger.ms=0`; each `produce` waits for its delivery
/// report, which a thread of its own serves (`rd_kafka_poll`), so any number of publishers can
/// wait at once.
final class RawKafkaProducer: Sendable {
    let handle: RawPointer
    private let stop = StopFlag()
    private let stopped = Latch()

    /// A record's wait for its delivery report; librdkafka holds it (retained) as the record's opaque.
    private final class Delivery: Sendable {
        let continuation: CheckedContinuation<rd_kafka_resp_err_t, Never>
        init(_ continuation: CheckedContinuation<rd_kafka_resp_err_t, Never>) { self.continuation = continuation }
    }

    init(servers: String, linger: Int = 0) throws {
        handle = try RawKafka.handle(RD_KAFKA_PRODUCER, ["bootstrap.servers": servers, "acks": "all", "linger.ms": String(linger)]) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                guard let message, let opaque = message.pointee._private else { return }
                Unmanaged<Delivery>.fromOpaque(opaque).takeRetainedValue().continuation.resume(returning: message.pointee.err)
            }
        }
        let handle = self.handle, stop = self.stop, stopped = self.stopped
        Thread {
            while !stop.isSet { rd_kafka_poll(handle.pointer, 100) }
            stopped.open()
        }.start()
    }

    func produce(topic: String) async throws {
        var payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        let handle = self.handle
        let error = await withCheckedContinuation { (continuation: CheckedContinuation<rd_kafka_resp_err_t, Never>) in
            let opaque = Unmanaged.passRetained(Delivery(continuation)).toOpaque()
            // librdkafka copies the value (RD_KAFKA_MSG_F_COPY in the shim).
            let status = payload.withUnsafeMutableBytes { bytes in
                courier_kafka_produce(handle.pointer, topic, courier_kafka_partition_unassigned, nil, 0, bytes.baseAddress, bytes.count, 0, nil, opaque)
            }
            if status != RD_KAFKA_RESP_ERR_NO_ERROR {
                Unmanaged<Delivery>.fromOpaque(opaque).release()
                continuation.resume(returning: status)
            }
        }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw BenchError("librdkafka produce: \(String(cString: rd_kafka_err2str(error)))")
        }
    }

    /// Produces `count` records without waiting for each (a full local queue waits for room in
    /// `rd_kafka_flush`), then waits until every one is delivered; on a thread of its own.
    func produceWithoutWaiting(topic: String, count: Int) async throws {
        let handle = self.handle
        try await onThread {
            var payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
            var produced = 0
            while produced < count {
                let status = payload.withUnsafeMutableBytes { bytes in
                    courier_kafka_produce(handle.pointer, topic, courier_kafka_partition_unassigned, nil, 0, bytes.baseAddress, bytes.count, 0, nil, nil)
                }
                switch status {
                case RD_KAFKA_RESP_ERR_NO_ERROR: produced += 1
                case RD_KAFKA_RESP_ERR__QUEUE_FULL: rd_kafka_flush(handle.pointer, 100)
                default: throw BenchError("librdkafka produce: \(String(cString: rd_kafka_err2str(status)))")
                }
            }
            let flushed = rd_kafka_flush(handle.pointer, 60_000)
            guard flushed == RD_KAFKA_RESP_ERR_NO_ERROR else { throw BenchError("librdkafka flush: \(String(cString: rd_kafka_err2str(flushed)))") }
        }
    }

    /// Stops the poll thread and destroys the producer (what is still queued is flushed first,
    /// off Swift's pool).
    func close() async {
        let handle = self.handle
        _ = try? await onThread { rd_kafka_flush(handle.pointer, 5_000) }
        stop.set()
        await stopped.wait()
        rd_kafka_destroy(handle.pointer)
    }
}

/// Tells the raw consumer's thread to give up (the publisher failed).
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

enum RawKafka {
    /// The text librdkafka wrote into an error buffer.
    static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func handle(
        _ kind: rd_kafka_type_t,
        _ properties: [String: String],
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws -> RawPointer {
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties {
            guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw BenchError("librdkafka \(name): \(RawKafka.text(errorText))")
            }
        }
        configure(conf)
        guard let handle = rd_kafka_new(kind, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw BenchError("librdkafka: \(RawKafka.text(errorText))")
        }
        return RawPointer(handle)
    }

    /// Creates `topic` with one partition, as Courier and FastStream create theirs.
    static func createTopic(_ topic: String, handle: OpaquePointer) throws {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, 1, 1, &errorText, errorText.count) else {
            throw BenchError("librdkafka new topic: \(RawKafka.text(errorText))")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let queue = rd_kafka_queue_new(handle)!
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(handle, &topics, 1, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, 10_000) else { throw BenchError("librdkafka: creating \(topic) timed out") }
        defer { rd_kafka_event_destroy(event) }
        var status = rd_kafka_event_error(event)
        var count = 0
        if status == RD_KAFKA_RESP_ERR_NO_ERROR, let result = rd_kafka_event_CreateTopics_result(event),
            let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0, let first = results[0]
        {
            status = rd_kafka_topic_result_error(first)
        }
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR || status == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
            throw BenchError("librdkafka: cannot create \(topic): \(String(cString: rd_kafka_err2str(status)))")
        }
    }
}
