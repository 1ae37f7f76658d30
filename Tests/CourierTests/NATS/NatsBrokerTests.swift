@testable import CourierNATS
import Courier
import Foundation
import InMemoryTracing
import MetricsTestKit
import NIOCore
import Testing
import Tracing

/// Core NATS against a real nats-server.
@Suite("NATS broker")
struct NatsBrokerTests {
    @Test("core: a message reaches the subject's subscriber, traced with NATS attributes and headers")
    func publishSubscribe() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let subject = NatsTestServer.unique("core")
        let inbox = Inbox<IncomingMessage>()
        broker.subscriber(subject) { (_: String, context: MessageContext) in inbox.put(context.message) }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("hello", to: subject, headers: ["x-tenant": "acme"])
            let message = try #require(try await inbox.wait(count: 1).first)
            #expect(String(buffer: message.body) == "hello")
            #expect(message.headers["x-tenant"] == "acme")
            #expect(message.contentType == "text/plain")
            #expect(message.correlationID != nil)
        }
        let send = try tracer.finishedSpans.named("send \(subject)")
        let process = try tracer.finishedSpans.named("process \(subject)")
        #expect(process.parentSpanID == send.spanID)
        #expect(process.traceID == send.traceID)
        #expect(process.attribute("messaging.system")?.toSpanAttribute() == "nats")
        #expect(process.attribute("server.address")?.toSpanAttribute() == "127.0.0.1")
        let port = try #require(NatsServerAddress(url: NatsTestServer.url)?.port)
        #expect(process.attribute("server.port")?.toSpanAttribute() == .int64(Int64(port)))
        #expect(process.attribute("messaging.destination.name")?.toSpanAttribute() == .string(subject))
    }

    @Test("wildcards and {name} captures: the handler gets the captures; spans are named after the pattern")
    func wildcardsAndCaptures() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let prefix = NatsTestServer.unique("logs")
        let captured = Inbox<[String: String]>()
        let everything = Inbox<String>()
        broker.subscriber(.subject("\(prefix).{level}.*")) { (_: String, context: MessageContext) in
            captured.put(try context.message.nats.path)
        }
        broker.subscriber(.subject("\(prefix).>")) { (_: String, context: MessageContext) in
            everything.put(context.message.destination)
        }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("disk full", to: "\(prefix).error.disk")
            try await broker.publish("deep", to: "\(prefix).info.a.b")
            #expect(try await captured.wait(count: 1) == [["level": "error"]])
            #expect(Set(try await everything.wait(count: 2)) == ["\(prefix).error.disk", "\(prefix).info.a.b"])
        }
        let process = try tracer.finishedSpans.named("process \(prefix).{level}.*")
        #expect(process.attribute("messaging.destination.template")?.toSpanAttribute() == .string("\(prefix).{level}.*"))
        #expect(tracer.finishedSpans.filter { $0.operationName == "process \(prefix).>" }.count == 2)
    }

    @Test("queue groups: each message goes to one member of the group; a plain subscriber sees all")
    func queueGroups() async throws {
        let subject = NatsTestServer.unique("work")
        let first = try NatsBroker(url: NatsTestServer.url)
        let second = try NatsBroker(url: NatsTestServer.url)
        let shared = Inbox<Int>()
        let all = Inbox<Int>()
        let firstCount = Inbox<Int>()
        first.subscriber(.subject(subject, queue: "workers")) { (number: Int, _) in
            shared.put(number)
            firstCount.put(number)
        }
        second.subscriber(.subject(subject, queue: "workers")) { (number: Int, _) in shared.put(number) }
        second.subscriber(subject) { (number: Int, _) in all.put(number) }
        try await withRunningApp([first, second]) {
            await first.waitUntilSubscribed()
            await second.waitUntilSubscribed()
            for number in 1...40 { try await first.publish(number, to: subject) }
            #expect(try await shared.wait(count: 40).sorted() == Array(1...40))
            #expect(try await all.wait(count: 40).sorted() == Array(1...40))
        }
        #expect(shared.values.count == 40, "no message went to two members")
        #expect((1..<40).contains(firstCount.values.count), "both members got a share: \(firstCount.values.count) of 40")
        #expect(try await queueGroupSpanAttribute() == "workers")
    }

    private func queueGroupSpanAttribute() async throws -> String? {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let subject = NatsTestServer.unique("group")
        let inbox = Inbox<String>()
        broker.subscriber(.subject(subject, queue: "workers")) { (text: String, _) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("x", to: subject)
            try await inbox.wait(count: 1)
        }
        let process = try tracer.finishedSpans.named("process \(subject)")
        guard case .string(let group)? = process.attribute("messaging.consumer.group.name")?.toSpanAttribute() else { return nil }
        return group
    }

    @Test("request/reply: the reply comes back over an inbox, traced in the request's trace")
    func requestReply() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let subject = NatsTestServer.unique("upper")
        broker.subscriber(subject) { (text: String, _) -> String in text.uppercased() }
        try await withRunningNats(broker) { () async throws in
            let reply = try await broker.request("ping", to: subject, timeout: .seconds(5))
            #expect(String(buffer: reply.body) == "PING")
        }
        let request = try tracer.finishedSpans.named("send \(subject)")
        let handled = try tracer.finishedSpans.named("process \(subject)")
        #expect(handled.traceID == request.traceID)
        let replySend = try #require(tracer.finishedSpans.first { $0.operationName == "send" && $0.attribute("messaging.destination.temporary") != nil })
        let replyProcess = try #require(tracer.finishedSpans.first { $0.operationName == "process" && $0.attribute("messaging.destination.temporary") != nil })
        #expect(replySend.traceID == request.traceID)
        #expect(replyProcess.traceID == request.traceID)
        #expect(replyProcess.parentSpanID == replySend.spanID)
    }

    @Test("request/reply: no responders fails at once; a silent responder times out")
    func noRespondersAndTimeout() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let silent = NatsTestServer.unique("silent")
        // A request gets an empty reply when the handler returns nothing; this one answers too late.
        broker.subscriber(silent) { (_: String, _) in try await Task.sleep(for: .seconds(1)) }
        try await withRunningNats(broker) { () async throws in
            let started = ContinuousClock.now
            await #expect(throws: NatsError.self) {
                _ = try await broker.request("anyone?", to: NatsTestServer.unique("nobody"), timeout: .seconds(5))
            }
            #expect(ContinuousClock.now - started < .seconds(2), "no responders is reported by the server, not by the timeout")
            do {
                _ = try await broker.request("hello", to: silent, timeout: .milliseconds(300))
                Issue.record("a request nobody answers must time out")
            } catch let error as CourierError {
                #expect(error.code == .requestTimedOut)
            }
        }
    }

    @Test("malformed input: a broken header block and a broken traceparent are handled; the subscriber keeps running")
    func malformedHeaders() async throws {
        let tracer = InMemoryTracer()
        let logs = CapturedLogs()
        let broker = NatsBroker(
            configuration: try NatsConfiguration(url: NatsTestServer.url),
            middlewares: [TelemetryMiddleware(tracer: tracer)],
            logger: logs.logger()
        )
        let subject = NatsTestServer.unique("broken")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, _) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            // A header block without the NATS/1.0 preamble, sent on a raw connection.
            try await RawNatsClient.publish(url: NatsTestServer.url, subject: subject, headerBlock: "garbage\r\n\r\n", body: "lost?")
            try await broker.publish("after", to: subject, headers: ["traceparent": "00-not-a-trace"])
            #expect(try await inbox.wait(count: 1) == ["after"])
        }
        #expect(logs.contains(.error, "malformed NATS headers"))
        let processes = tracer.finishedSpans.filter { $0.operationName == "process \(subject)" }
        #expect(processes.count == 2)
        #expect(processes.contains { $0.status?.code == .error })
        let send = try tracer.finishedSpans.named("send \(subject)")
        // The broken traceparent was replaced by the send span's own: the trace still connects.
        #expect(processes.contains { $0.parentSpanID == send.spanID })
    }

    @Test("slow consumer: past the pending limits messages are dropped and reported, the subscriber keeps running")
    func slowConsumer() async throws {
        var configuration = try NatsConfiguration(url: NatsTestServer.url)
        configuration.pendingLimits = NatsConfiguration.PendingLimits(messages: 5, bytes: 1 << 20)
        let logs = CapturedLogs()
        let metrics = TestMetrics()
        let broker = NatsBroker(configuration: configuration, logger: logs.logger(), metricsFactory: metrics)
        let subject = NatsTestServer.unique("slow")
        let gate = Gate()
        let handled = Inbox<Int>()
        broker.subscriber(subject) { (number: Int, _) in
            if number == 0 { try await gate.pass() }
            handled.put(number)
        }
        let producer = try NatsBroker(url: NatsTestServer.url)
        try await withRunningNats(broker) { () async throws in
            try await producer.publish(0, to: subject)
            for number in 1...200 { try await producer.publish(number, to: subject) }
            try await producer.transport.client.flush()
            try await broker.transport.client.flush()
            gate.open()
            // The blocked message survives; how many of the burst fit nats.c's queue and the
            // hand-off queue (5 each) depends on how fast nats.c's thread ran meanwhile.
            try await handled.wait(count: 1)
            for _ in 1...3 {
                try await producer.publish(1000, to: subject)
                try await producer.transport.client.flush()
            }
            try await waitFor(handled, toContain: 1000)
        }
        #expect(handled.values.count < 100, "most of the burst was dropped: \(handled.values.count) handled")
        #expect(logs.contains(.warning, "slow consumer"))
        let dropped = try metrics.expectCounter("courier.nats.slow_consumer.dropped", [("messaging.destination.name", subject)])
        let reportedByClient = (try? metrics.expectCounter("courier.nats.slow_consumer"))?.totalValue ?? 0
        #expect(dropped.totalValue + reportedByClient > 0)
        #expect(dropped.totalValue + Int64(handled.values.count) <= 202, "dropped and handled add up to no more than was sent")
    }

    @Test("shutdown drains: messages already received are handled before the broker stops")
    func drainOnShutdown() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let subject = NatsTestServer.unique("drain")
        let handled = Inbox<Int>()
        broker.subscriber(subject) { (number: Int, _) in
            try await Task.sleep(for: .milliseconds(50))
            handled.put(number)
        }
        try await withRunningNats(broker) { () async throws in
            for number in 1...5 { try await broker.publish(number, to: subject) }
            try await broker.transport.client.flush()
            try await handled.wait(count: 1)
        }
        #expect(handled.values == [1, 2, 3, 4, 5])
    }

    @Test("URLs: several servers (one down), user and password, token; wrong credentials are refused")
    func urlsAndAuthentication() async throws {
        let users = try OwnedNatsServer(arguments: ["--user", "courier", "--pass", "s3cret"])
        try await users.start()
        let tokens = try OwnedNatsServer(arguments: ["--auth", "t0ken"])
        try await tokens.start()
        defer { Task { await users.kill(); await tokens.kill() } }

        let subject = NatsTestServer.unique("auth")
        let broker = try NatsBroker(url: "nats://courier:s3cret@127.0.0.1:1, nats://courier:s3cret@127.0.0.1:\(users.port)")
        broker.subscriber(subject) { (text: String, _) -> String in text + "!" }
        try await withRunningNats(broker) { () async throws in
            #expect(broker.transport.client.connectedURL?.contains(String(users.port)) == true)
            let reply = try await broker.request("hi", to: subject)
            #expect(String(buffer: reply.body) == "hi!")
        }

        var withToken = NatsConfiguration(servers: [tokens.url])
        withToken.token = "t0ken"
        let tokenBroker = NatsBroker(configuration: withToken)
        try await tokenBroker.transport.connect()
        try await tokenBroker.publish("ok", to: subject)
        await tokenBroker.transport.close()

        let wrong = try NatsTransport(configuration: NatsConfiguration(url: "nats://courier:wrong@127.0.0.1:\(users.port)"))
        await #expect(throws: NatsError.self) { try await wrong.connect() }
        #expect(throws: NatsError.self) { try NatsConfiguration(url: "http://127.0.0.1:4222") }
    }

    @Test("reconnect: after the server restarts, the subscription is restored and messages flow again")
    func reconnect() async throws {
        let server = try OwnedNatsServer()
        try await server.start()
        var configuration = NatsConfiguration(servers: [server.url])
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(100))
        let broker = NatsBroker(configuration: configuration)
        let subject = NatsTestServer.unique("reconnect")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, _) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("before", to: subject)
            try await inbox.wait(count: 1)
            await server.kill()
            try await server.start()
            // Published while reconnecting: nats.c buffers it and sends it after re-subscribing.
            try await broker.publish("after", to: subject)
            #expect(try await inbox.wait(count: 2, timeout: .seconds(15)) == ["before", "after"])
        }
        await server.kill()
    }
}

/// Waits until `inbox` holds `value`.
func waitFor<Value: Equatable & Sendable>(_ inbox: Inbox<Value>, toContain value: Value, timeout: Duration = .seconds(10)) async throws {
    var count = inbox.values.count
    while !inbox.values.contains(value) {
        count += 1
        try await inbox.wait(count: count, timeout: timeout)
    }
}

/// Speaks the NATS text protocol directly, to send what a proper client never would.
enum RawNatsClient {
    static func publish(url: String, subject: String, headerBlock: String, body: String) async throws {
        let address = try #require(NatsServerAddress(url: url))
        let payload = headerBlock + body
        let command = "CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB \(subject) \(headerBlock.utf8.count) \(payload.utf8.count)\r\n\(payload)\r\nPING\r\n"
        try await NatsClient.blocking { () -> Result<Void, any Error> in
            Result { try RawSocket.send(command, host: address.host, port: address.port, until: "PONG") }
        }.get()
    }
}
