@testable import CourierRedis
import Courier
import Foundation
import InMemoryTracing
import Logging
import NIOPosix
import NIOCore
import Testing
import Tracing

/// The Redis broker against a real redis-server.
@Suite("Redis broker")
struct RedisBrokerTests {
    @Test("pub/sub: a message reaches the channel's subscriber, traced with Redis attributes")
    func pubSub() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let channel = RedisTestServer.unique("channel")
        let inbox = Inbox<String>()
        broker.subscriber(channel) { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("hello", to: channel)
            #expect(try await inbox.wait(count: 1) == ["hello"])
        }
        let send = try tracer.finishedSpans.named("send \(channel)")
        let process = try tracer.finishedSpans.named("process \(channel)")
        #expect(process.parentSpanID == send.spanID)
        #expect(process.attribute("messaging.system")?.toSpanAttribute() == "redis")
        #expect(process.attribute("server.address")?.toSpanAttribute() == "127.0.0.1")
        #expect(process.attribute("messaging.destination.name")?.toSpanAttribute() == .string(channel))
    }

    @Test("sharded pub/sub on one server: SPUBLISH reaches SSUBSCRIBE's subscriber and not SUBSCRIBE's, and the reverse; traced as one trace")
    func shardedPubSub() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let channel = RedisTestServer.unique("shard")
        let sharded = Inbox<String>()
        let plain = Inbox<String>()
        broker.subscriber(.channel(channel, sharded: true)) { (text: String, _) in sharded.put(text) }
        broker.subscriber(.channel(channel)) { (text: String, _) in plain.put(text) }
        try await withRunningRedis(broker) { () async throws in
            // Redis keeps the two kinds apart: each subscriber sees only its own kind's publish.
            let receipt = try await broker.publish("to shard", to: .channel(channel, sharded: true))
            #expect(receipt?.redis?.receivers == 1, "SPUBLISH counts the one SSUBSCRIBE subscriber")
            try await broker.publish("to all", to: .channel(channel))
            #expect(try await sharded.wait(count: 1) == ["to shard"])
            #expect(try await plain.wait(count: 1) == ["to all"])
            let subscribers = try await RedisTestServer.connection().send(RedisCommand("PUBSUB", ["SHARDNUMSUB", .string(channel)]))
            #expect(subscribers.elements?.last?.integer == 1)
        }
        let sends = tracer.finishedSpans.filter { $0.operationName == "send \(channel)" }
        let processes = tracer.finishedSpans.filter { $0.operationName == "process \(channel)" }
        try #require(sends.count == 2 && processes.count == 2)
        for process in processes {
            #expect(sends.contains { $0.spanID == process.parentSpanID && $0.traceID == process.traceID })
        }
    }

    @Test("patterns: {name} captures reach the handler; the span is named after the pattern")
    func patterns() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let prefix = RedisTestServer.unique("logs")
        let inbox = Inbox<[String: String]>()
        broker.subscriber(.pattern("\(prefix).{level}")) { (_: String, context: MessageContext) in
            inbox.put(try context.message.redis.path)
        }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("disk full", to: "\(prefix).error")
            #expect(try await inbox.wait(count: 1) == [["level": "error"]])
        }
        let process = try tracer.finishedSpans.named("process \(prefix).{level}")
        #expect(process.attribute("messaging.destination.template")?.toSpanAttribute() == .string("\(prefix).{level}"))
    }

    @Test("lists: RPUSH in, one consumer gets each message, batches come from one BLMPOP")
    func lists() async throws {
        let broker = try RedisBroker(url: RedisTestServer.url)
        let single = RedisTestServer.unique("list")
        let batched = RedisTestServer.unique("batch")
        let singles = Inbox<Order>()
        let batches = Inbox<[String]>()
        broker.subscriber(.list(single)) { (order: Order, _) in singles.put(order) }
        broker.subscriber(.list(batched), batch: BatchOptions(maxMessages: 10)).handle { (texts: [String], _) in batches.put(texts) }
        let producer = try RedisBroker(url: RedisTestServer.url)
        try await withRunningRedis(broker) { () async throws in
            try await producer.publish(Order(id: 1, item: "tea"), to: .list(single))
            try await producer.publish(Order(id: 2, item: "cake"), to: .list(single))
            #expect(try await singles.wait(count: 2) == [Order(id: 1, item: "tea"), Order(id: 2, item: "cake")])
        }
        // Queued before the consumer starts, so they are all ready together.
        try await producer.publishBatch(["a", "b", "c"], to: .list(batched))
        let again = try RedisBroker(url: RedisTestServer.url)
        again.subscriber(.list(batched), batch: BatchOptions(maxMessages: 10)).handle { (texts: [String], _) in batches.put(texts) }
        try await withRunningRedis(again) { () async throws in
            #expect(try await batches.wait(count: 1) == [["a", "b", "c"]])
        }
    }

    @Test("list prefetch: messages popped ahead but not handled go back to the list, in order, on a graceful stop")
    func prefetchReturnedOnStop() async throws {
        let list = RedisTestServer.unique("prefetch")
        let producer = try RedisBroker(url: RedisTestServer.url)
        for number in 1...10 { try await producer.publish(number, to: .list(list)) }
        let broker = try RedisBroker(url: RedisTestServer.url)
        let handled = Inbox<Int>()
        let gate = Gate()
        broker.subscriber(.list(list, prefetch: 16)) { (number: Int, _) in
            handled.put(number)
            try await gate.pass()
        }
        try await withRunningRedis(broker) { () async throws in
            _ = try await handled.wait(count: 1)
            // The stop comes while the first message is in the handler, the rest prefetched.
            await broker.stopIntake()
            gate.open()
        }
        #expect(handled.values == [1])
        let connection = try await RedisTestServer.connection()
        let left = try await connection.send(RedisCommand("LRANGE", [.string(list), "0", "-1"])).elements ?? []
        await connection.close()
        let numbers = try left.compactMap(\.bytes).map { try RedisEnvelope.decode($0).body }.map { Int(String(buffer: $0)) }
        #expect(numbers == (2...10).map { $0 })
    }

    @Test("streams without a group: every entry, its entry id as the message id")
    func streamWithoutGroup() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let stream = RedisTestServer.unique("stream")
        let inbox = Inbox<String?>()
        broker.subscriber(.stream(stream)) { (_: String, context: MessageContext) in inbox.put(try context.message.redis.entryID) }
        let id = try await withRunningRedis(broker) { () async throws in
            try await broker.publish("one", to: .stream(stream, maxLength: 100))
            return try await inbox.wait(count: 1).first ?? nil
        }
        let entryID = try #require(id)
        #expect(entryID.contains("-"))
        // The handler ran inside the process span, which ends after it returns: its span is
        // finished once the broker stopped (graceful shutdown waits for messages in flight), not
        // when the handler's value arrived.
        let process = try tracer.finishedSpans.named("process \(stream)")
        #expect(process.attribute("messaging.message.id")?.toSpanAttribute() == .string(entryID))
    }

    @Test("stream groups: ack is XACK, nack redelivers, reject leaves the entry pending")
    func streamGroups() async throws {
        let broker = try RedisBroker(url: RedisTestServer.url)
        let stream = RedisTestServer.unique("orders")
        let attempts = Inbox<String>()
        broker.subscriber(.stream(stream, group: "billing", consumer: "billing-1"), options: SubscriberOptions(ackPolicy: .manual)) {
            (text: String, context: MessageContext) in
            attempts.put(text)
            switch text {
            case "retry" where attempts.values.filter({ $0 == "retry" }).count == 1: try await context.nack()
            case "poison": try await context.reject()
            default: try await context.ack()
            }
        }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("fine", to: .stream(stream))
            try await broker.publish("retry", to: .stream(stream))
            try await broker.publish("poison", to: .stream(stream))
            try await broker.publish("after", to: .stream(stream))
            let seen = try await attempts.wait(count: 5)
            #expect(seen.filter { $0 == "retry" }.count == 2)
            #expect(seen.filter { $0 == "poison" }.count == 1)
            #expect(Set(seen) == ["fine", "retry", "poison", "after"])
        }
        let connection = try await RedisTestServer.connection()
        let pending = try await connection.send(RedisCommand("XPENDING", [.string(stream), "billing"]))
        #expect(pending.elements?.first?.integer == 1)  // the rejected entry, and only it
        await connection.close()
    }

    @Test("request/reply over a temporary channel, to a channel, a list and a stream")
    func requestReply() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let channel = RedisTestServer.unique("double")
        let list = RedisTestServer.unique("double-list")
        let stream = RedisTestServer.unique("double-stream")
        broker.subscriber(channel) { (number: Int, _) in number * 2 }
        broker.subscriber(.list(list)) { (number: Int, _) in number * 3 }
        broker.subscriber(.stream(stream, group: "g")) { (number: Int, _) in number * 4 }
        try await withRunningRedis(broker) { () async throws in
            #expect(try await broker.request(21, to: channel, as: Int.self) == 42)
            #expect(try await broker.request(2, to: .list(list)).decode(as: Int.self) == 6)
            #expect(try await broker.request(2, to: .stream(stream)).decode(as: Int.self) == 8)
            await #expect(throws: CourierError.self) {
                try await broker.request(1, to: RedisTestServer.unique("nobody"), timeout: .milliseconds(200))
            }
        }
        let reply = try #require(tracer.finishedSpans.first { $0.operationName == "send" && $0.attribute("messaging.destination.temporary") != nil })
        #expect(reply.kind == .producer)
    }

    @Test("a malformed envelope is an error for that message only; the subscriber keeps running")
    func malformedEnvelope() async throws {
        let tracer = InMemoryTracer()
        let logs = CapturedLogs()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)], logger: logs.logger())
        let list = RedisTestServer.unique("broken")
        let inbox = Inbox<String>()
        broker.subscriber(.list(list)) { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            let connection = try await RedisTestServer.connection()
            var broken = ByteBuffer(bytes: RedisEnvelope.magic)
            broken.writeBytes([0x00, 0x01, 0, 0, 0, 18, 0, 0, 0, 250, 0, 0])
            _ = try await connection.send(RedisCommand("RPUSH", [.string(list), .bytes(broken)]))
            await connection.close()
            try await broker.publish("still here", to: .list(list))
            #expect(try await inbox.wait(count: 1) == ["still here"])
        }
        let failed = try #require(tracer.finishedSpans.first { $0.operationName == "process \(list)" && $0.status?.code == .error })
        #expect(failed.attribute("error.type")?.toSpanAttribute() == "DecodingError")
        #expect(logs.contains(.error, "malformed Redis envelope"))
    }

    @Test("first → second → third through Redis lists is one trace")
    func chain() async throws {
        let tracer = InMemoryTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let (first, second, third) = (RedisTestServer.unique("first"), RedisTestServer.unique("second"), RedisTestServer.unique("third"))
        let done = Inbox<String>()
        broker.subscriber(.list(first)).publisher(.list(second)).handle { (text: String, _) in text + "+1" }
        broker.subscriber(.list(second)).publisher(.stream(third)).handle { (text: String, _) in text + "+2" }
        broker.subscriber(.stream(third, group: "end")) { (text: String, _) in done.put(text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("m", to: .list(first))
            #expect(try await done.wait(count: 1) == ["m+1+2"])
        }
        let spans = tracer.finishedSpans
        let processThird = try spans.named("process \(third)")
        let sendThird = try spans.named("send \(third)")
        let processSecond = try spans.named("process \(second)")
        let sendSecond = try spans.named("send \(second)")
        let processFirst = try spans.named("process \(first)")
        #expect(processThird.parentSpanID == sendThird.spanID)
        #expect(sendThird.parentSpanID == processSecond.spanID)
        #expect(processSecond.parentSpanID == sendSecond.spanID)
        #expect(sendSecond.parentSpanID == processFirst.spanID)
        #expect(Set(spans.map(\.traceID)).count == 1)
        #expect(processThird.attribute("messaging.consumer.group.name")?.toSpanAttribute() == "end")
    }

    @Test("AUTH as an ACL user or with the default user's password, SELECT a database; wrong credentials fail clearly")
    func authenticationAndDatabase() async throws {
        let server = try await OwnedRedisServer(
            arguments: ["--requirepass", "default-pass", "--user", "app", "on", ">app-pass", "~*", "&*", "+@all"],
            credentials: ":default-pass@"
        )
        try await server.start()
        defer { server.stop() }
        let base = "127.0.0.1:\(server.port)"

        let broker = try RedisBroker(url: "redis://app:app-pass@\(base)/3")
        try await broker.publish("queued", to: .list("jobs"))
        let inspector = try await RedisConnection.connect(RedisConfiguration(url: "redis://:default-pass@\(base)"))
        #expect(try await inspector.send(RedisCommand("LLEN", ["jobs"])).integer == 0)
        _ = try await inspector.send(RedisCommand("SELECT", ["3"]))
        #expect(try await inspector.send(RedisCommand("LLEN", ["jobs"])).integer == 1)
        await inspector.close()

        let inbox = Inbox<String>()
        broker.subscriber(.list("jobs")) { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            #expect(try await inbox.wait(count: 1) == ["queued"])
        }

        await #expect {
            try await RedisConnection.connect(RedisConfiguration(url: "redis://app:wrong@\(base)"))
        } throws: { error in
            (error as? RedisError)?.message.contains("WRONGPASS") == true
        }
        await #expect {
            try await RedisConnection.connect(RedisConfiguration(url: "redis://\(base)")).send(RedisCommand("GET", ["x"]))
        } throws: { error in
            (error as? RedisError)?.message.contains("NOAUTH") == true
        }
    }

    @Test("TLS: rediss:// to a server whose CA the configuration trusts; an untrusted certificate is refused")
    func tls() async throws {
        let server = try await OwnedRedisServer(tls: true)
        try await server.start()
        defer { server.stop() }
        var configuration = try RedisConfiguration(url: "rediss://localhost:\(server.tlsPort)")
        configuration.tls?.trustRoots = .file(server.caCertificate)
        let broker = RedisBroker(configuration: configuration)
        let inbox = Inbox<String>()
        broker.subscriber(.list("secure")) { (text: String, _) in inbox.put(text) }
        broker.subscriber("secure-channel") { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("over TLS", to: .list("secure"))
            try await broker.publish("pub/sub over TLS", to: "secure-channel")
            #expect(Set(try await inbox.wait(count: 2)) == ["over TLS", "pub/sub over TLS"])
        }
        await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(RedisConfiguration(url: "rediss://localhost:\(server.tlsPort)"))
        }
    }

    @Test("claimIdleAfter: an entry a crashed consumer left pending is claimed (XAUTOCLAIM) and processed")
    func autoclaim() async throws {
        let stream = RedisTestServer.unique("claim")
        let connection = try await RedisTestServer.connection()
        _ = try await connection.send(RedisCommand("XGROUP", ["CREATE", .string(stream), "g", "$", "MKSTREAM"]))
        let envelope = try RedisEnvelope.encode(OutgoingMessage(body: ByteBuffer(string: "orphan"), contentType: "text/plain"), allocator: ByteBufferAllocator())
        _ = try await connection.send(RedisCommand("XADD", [.string(stream), "*", "__data__", .bytes(envelope)]))
        // The consumer "crashed" reads the entry and dies without acking it.
        _ = try await connection.send(RedisCommand("XREADGROUP", ["GROUP", "g", "crashed", "COUNT", "1", "STREAMS", .string(stream), ">"]))

        let broker = try RedisBroker(url: RedisTestServer.url)
        let inbox = Inbox<String>()
        broker.subscriber(.stream(stream, group: "g", consumer: "alive", claimIdleAfter: .milliseconds(200))) { (text: String, _) in
            inbox.put(text)
        }
        try await withRunningRedis(broker) { () async throws in
            #expect(try await inbox.wait(count: 1) == ["orphan"])
        }
        let pending = try await connection.send(RedisCommand("XPENDING", [.string(stream), "g"]))
        #expect(pending.elements?.first?.integer == 0)
        await connection.close()
    }

    @Test("RESP2: pub/sub, patterns, lists and stream groups work the same on a RESP2 connection")
    func resp2() async throws {
        var configuration = try RedisTestServer.configuration
        configuration.prefersRESP3 = false
        let probe = try await RedisConnection.connect(configuration)
        #expect(!probe.isRESP3)
        await probe.close()
        let broker = RedisBroker(configuration: configuration)
        let prefix = RedisTestServer.unique("resp2")
        let inbox = Inbox<String>()
        broker.subscriber("\(prefix).channel") { (text: String, _) in inbox.put("channel:" + text) }
        broker.subscriber(.pattern("\(prefix).p.{name}")) { (_: String, context: MessageContext) in
            inbox.put("pattern:" + (try context.message.redis.path["name"] ?? "?"))
        }
        broker.subscriber(.list("\(prefix).list")) { (text: String, _) in inbox.put("list:" + text) }
        broker.subscriber(.stream("\(prefix).stream", group: "g")) { (text: String, _) in inbox.put("stream:" + text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("a", to: "\(prefix).channel")
            try await broker.publish("b", to: "\(prefix).p.bee")
            try await broker.publish("c", to: .list("\(prefix).list"))
            try await broker.publish("d", to: .stream("\(prefix).stream"))
            #expect(Set(try await inbox.wait(count: 4)) == ["channel:a", "pattern:bee", "list:c", "stream:d"])
            #expect(try await broker.request("x", to: .list("\(prefix).list"), timeout: .seconds(2)).body.readableBytes == 0)
        }
    }

    @Test("a server that answers with garbage: the connection closes with a protocol error, no crash")
    func malformedReply() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(GarbageAnswerer())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        await #expect {
            try await RedisConnection.connect(RedisConfiguration(url: "redis://127.0.0.1:\(port)"))
        } throws: { error in
            (error as? RedisError)?.code == .protocolViolation
        }
    }

    @Test("a stream group loses nothing when the server restarts mid-stream")
    func serverRestart() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        defer { server.stop() }
        let broker = try RedisBroker(url: server.url)
        let stream = "restart"
        let inbox = Inbox<Int>()
        broker.subscriber(.stream(stream, group: "g", consumer: "c1")) { (number: Int, _) in inbox.put(number) }
        let producer = try RedisBroker(url: server.url)
        try await withRunningRedis(broker) { () async throws in
            for number in 1...5 { try await producer.publish(number, to: .stream(stream)) }
            _ = try await inbox.wait(count: 5)
            server.stop()
            try await server.start()
            for number in 6...10 { try await producer.publish(number, to: .stream(stream)) }
            // At least once: an entry whose XACK the restart cut off comes again; wait until
            // every number has arrived (each wait fails after its deadline).
            var count = 10
            var received = Set(try await inbox.wait(count: count, timeout: .seconds(20)))
            while received != Set(1...10), count < 20 {
                count += 1
                received = Set(try await inbox.wait(count: count, timeout: .seconds(10)))
            }
            #expect(received == Set(1...10))
        }
    }

    @Test("pub/sub: the transport's run loop renews channel and pattern subscriptions after the server restarts")
    func pubSubRenewedAfterRestart() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        defer { server.stop() }
        let renewals = Inbox<String>()
        let logger = Logger(label: "test") { _ in SignallingLogHandler(inbox: renewals, fragment: "re-established") }
        let broker = try RedisBroker(url: server.url, logger: logger)
        let inbox = Inbox<String>()
        broker.subscriber("news") { (text: String, _) in inbox.put("channel:" + text) }
        broker.subscriber(.pattern("alerts.{level}")) { (_: String, context: MessageContext) in
            inbox.put("pattern:" + (try context.message.redis.path["level"] ?? "?"))
        }
        let producer = try RedisBroker(url: server.url)
        try await withRunningRedis(broker) { () async throws in
            try await producer.publish("before", to: "news")
            #expect(try await inbox.wait(count: 1) == ["channel:before"])
            server.stop()
            try await server.start()
            // Logged once Redis confirmed every subscription on the new connection.
            try await renewals.wait(count: 1, timeout: .seconds(20))
            try await producer.publish("after", to: "news")
            try await producer.publish("!", to: "alerts.high")
            #expect(Set(try await inbox.wait(count: 3)) == ["channel:before", "channel:after", "pattern:high"])
        }
    }
}

/// Puts every log message that contains `fragment` into `inbox`: a test waits for a log line.
private struct SignallingLogHandler: LogHandler {
    let inbox: Inbox<String>
    let fragment: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let message = event.message.description
        if message.contains(fragment) { inbox.put(message) }
    }
}

/// Answers whatever it is sent with bytes that are not RESP.
private final class GarbageAnswerer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "?this is not RESP\r\n")), promise: nil)
    }
}
