import CNats
import Courier
import CourierNATS
import Foundation
import NIOCore
import Tracing

/// The NATS rows of `make bench`: core NATS (publish N messages to a subject one after another)
/// and JetStream (N publishes each waiting for its PubAck, a durable pull consumer acking each
/// message), a subscriber in the same process with a handler that does nothing; for nats.c
/// alone, Courier and FastStream, tracing off and on, against the same nats-server.
struct NatsBench {
    var url: String
    var python: String?
    var workload: BrokerWorkload
    var tracers: [BenchTracer]
    var fastStreamMessages: Int

    /// Messages per JetStream pull: 16 one after another, 100 (the README's advice for
    /// throughput) at saturation, for every client.
    var pullBatch: Int { workload.isSaturation ? 100 : 16 }

    func title(jetStream: Bool) -> String {
        switch (jetStream, workload.isSaturation) {
        case (false, false):
            return """
                NATS core: \(workload.messages) messages of 64 bytes published to a subject one after another, one subscriber in
                the same process, a handler that does nothing; latency: publish call to handler start, one at a time.
                """
        case (false, true):
            return """
                NATS core: \(workload.messages) messages of 64 bytes (FastStream: \(fastStreamMessages)) published to a subject by \(workload.publishers) concurrent
                publishers on one connection, one subscriber in the same process (Courier: its pending limit raised to the
                run's size, since core NATS has no flow control), a handler that does nothing.
                """
        case (true, false):
            return """
                NATS JetStream (memory stream): \(workload.messages) publishes one after another, each waiting for its PubAck; a
                durable pull consumer (\(pullBatch) per fetch) in the same process acks each message after a handler that does nothing.
                """
        case (true, true):
            return """
                NATS JetStream (memory stream): \(workload.messages) publishes (FastStream: \(fastStreamMessages)) from \(workload.publishers) concurrent publishers,
                each waiting for its PubAck (nats.c alone: a thread per publisher in js_Publish); a durable pull consumer
                (\(pullBatch) per fetch) in the same process acks each message after a handler that does nothing.
                """
        }
    }

    func run(jetStream: Bool, rounds: Int) async throws -> [BrokerRow] {
        let kind = jetStream ? "jetstream" : "core"
        var rows = try await workload.interleaved(
            rounds: rounds,
            workload.scenarios(raw: { try await jetStream ? rawJetStream() : rawCore() }, tracers: tracers) {
                try await courier($0, jetStream: jetStream, middlewares: $1)
            }
        )
        if let python, workload.selects("FastStream") {
            let workload = self.workload.isSaturation ? self.workload.with(messages: fastStreamMessages) : self.workload
            for tracing in [false, true] {
                let (subject, stream) = Self.names("faststream")
                var arguments = ["--broker", "nats", "--kind", kind, "--url", url, "--name", subject, "--pull-batch", String(pullBatch)]
                if jetStream { arguments += ["--stream", stream] }
                rows.append(
                    try await workload.runFastStream(
                        BrokerWorkload.fastStreamRow(tracing: tracing),
                        python: python,
                        arguments: arguments,
                        tracing: tracing
                    )
                )
                if jetStream { try await deleteStream(stream) }
            }
        }
        return rows
    }

    private static func names(_ prefix: String) -> (subject: String, stream: String) {
        let id = UUID().uuidString.prefix(8)
        return ("\(prefix).bench.\(id)", "BENCH_\(prefix.uppercased())_\(id)")
    }

    private func declareStream(_ stream: String, subject: String) async throws {
        let admin = try NatsTransport(configuration: NatsConfiguration(url: url))
        try await admin.declareStream(NatsStream(stream, subjects: [subject], storage: .memory))
        await admin.close()
    }

    private func deleteStream(_ stream: String) async throws {
        let admin = try NatsTransport(configuration: NatsConfiguration(url: url))
        try await admin.deleteStream(stream)
        await admin.close()
    }

    // MARK: - Courier

    private func courier(_ name: String, jetStream: Bool, middlewares: [any CourierMiddleware]) async throws -> BrokerRow {
        let (subject, stream) = Self.names("courier")
        var configuration = try NatsConfiguration(url: url)
        if workload.isSaturation {
            // Core NATS has no flow control: publishers faster than the handler fill the
            // subscription until it is a slow consumer and drops. A user expecting bursts raises
            // the pending limit; here it holds the whole run.
            configuration.pendingLimits = NatsConfiguration.PendingLimits(messages: workload.warmup + workload.messages, bytes: 1 << 30)
        }
        let broker = NatsBroker(configuration: configuration, middlewares: middlewares)
        guard jetStream else {
            return try await workload.runCourier(name, broker: broker, source: .subject(subject)) { payload in
                try await broker.publish(payload, to: .subject(subject))
            }
        }
        let declared = NatsStream(stream, subjects: [subject], storage: .memory)
        let source = NatsSource.jetStream(subject, stream: declared, consumer: .pull("bench", batchSize: pullBatch))
        let row = try await workload.runCourier(name, broker: broker, source: source) { payload in
            try await broker.publish(payload, to: .jetStream(subject))
        }
        try await deleteStream(stream)
        return row
    }

    // MARK: - nats.c alone

    /// `natsConnection_Publish` of the bare 64 bytes and an asynchronous subscription: the ceiling.
    private func rawCore() async throws -> BrokerRow {
        let (subject, _) = Self.names("raw")
        let connection = try RawNats.connect(url)
        defer { natsConnection_Destroy(connection.pointer) }
        let probe = workload.makeProbe()
        let closure = Unmanaged.passRetained(probe).toOpaque()
        defer { Unmanaged<ArrivalProbe>.fromOpaque(closure).release() }
        var subscription: OpaquePointer?
        let onMessage: natsMsgHandler = { _, _, message, closure in
            natsMsg_Destroy(message)
            Unmanaged<ArrivalProbe>.fromOpaque(closure!).takeUnretainedValue().arrived()
        }
        try RawNats.check(natsConnection_Subscribe(&subscription, connection.pointer, subject, onMessage, closure), "subscribe")
        defer { natsSubscription_Destroy(subscription) }
        try RawNats.check(natsConnection_Flush(connection.pointer), "flush")
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        let row = try await workload.run("raw nats.c (publish, send ASAP + async subscription)", probe: probe) {
            try RawNats.check(natsConnection_Publish(connection.pointer, subject, payload, Int32(payload.count)), "publish")
        }
        natsSubscription_Unsubscribe(subscription)
        return row
    }

    /// `js_Publish` (waiting for each PubAck; at saturation a thread per publisher) and a pull
    /// subscription fetching `pullBatch` at a time and acking each message, on a thread of its
    /// own: the ceiling.
    private func rawJetStream() async throws -> BrokerRow {
        let (subject, stream) = Self.names("raw")
        try await declareStream(stream, subject: subject)
        let connection = try RawNats.connect(url)
        defer { natsConnection_Destroy(connection.pointer) }
        var context: OpaquePointer?
        try RawNats.check(natsConnection_JetStream(&context, connection.pointer, nil), "jetstream")
        let js = RawPointer(context!)
        defer { jsCtx_Destroy(js.pointer) }
        var subscription: OpaquePointer?
        var errorCode = jsErrCode(0)
        try RawNats.check(js_PullSubscribe(&subscription, js.pointer, subject, "rawbench", nil, nil, &errorCode), "pull subscribe")
        let pull = RawPointer(subscription!)
        defer { natsSubscription_Destroy(pull.pointer) }
        let probe = workload.makeProbe()
        let total = workload.warmup + workload.messages + workload.latencyMessages
        let batch = Int32(pullBatch)
        let consumer = Thread {
            var received = 0
            while received < total {
                var list = natsMsgList()
                var code = jsErrCode(0)
                guard natsSubscription_Fetch(&list, pull.pointer, batch, 5_000, &code) == NATS_OK else { continue }
                for index in 0..<Int(list.Count) {
                    natsMsg_Ack(list.Msgs[index], nil)
                    probe.arrived()
                }
                received += Int(list.Count)
                natsMsgList_Destroy(&list)
            }
        }
        consumer.start()
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        // js_Publish blocks for the PubAck (some 100 µs): on threads of their own.
        let row = try await workload.run("raw nats.c (js_Publish + pull fetch \(pullBatch))", probe: probe, publish: .blocking {
            var code = jsErrCode(0)
            try RawNats.check(js_Publish(nil, js.pointer, subject, payload, Int32(payload.count), nil, &code), "js publish")
        })
        try await deleteStream(stream)
        return row
    }
}

/// A nats.c object shared with the thread that uses it; the bench keeps it alive until that
/// thread is done, and nats.c's connection and subscription objects are thread-safe.
struct RawPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

enum RawNats {
    /// Connects with what Courier sets too (each publish written at once), so the rows compare
    /// the same wire behaviour.
    static func connect(_ url: String) throws -> RawPointer {
        var options: OpaquePointer?
        try check(natsOptions_Create(&options), "options")
        defer { natsOptions_Destroy(options) }
        try check(natsOptions_SetURL(options, url), "url")
        try check(natsOptions_SetSendAsap(options, true), "send asap")
        var connection: OpaquePointer?
        try check(natsConnection_Connect(&connection, options), "connect to \(Redaction.url(url))")
        return RawPointer(connection!)
    }

    static func check(_ status: natsStatus, _ what: String) throws {
        guard status == NATS_OK else { throw BenchError("nats.c \(what): \(String(cString: natsStatus_GetText(status)))") }
    }
}
