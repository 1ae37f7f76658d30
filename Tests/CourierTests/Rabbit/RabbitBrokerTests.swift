@testable import CourierRabbit
import Courier
import Foundation
import InMemoryTracing
import NIOCore
import NIOSSL
import Synchronization
import Testing
import Tracing

/// RabbitMQ broker features against a real server: the suite's node (`COURIER_RABBIT_URL`), and
/// nodes of the tests' own for restarts and TLS.
@Suite("RabbitMQ broker")
struct RabbitBrokerTests {
    static var url: String { ProcessInfo.processInfo.environment["COURIER_RABBIT_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/" }

    static func unique(_ prefix: String) -> String { "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    /// Quick reconnects, for tests that restart the server.
    static func quickReconnect(_ url: String) throws -> RabbitConfiguration {
        var configuration = try RabbitConfiguration(url: url)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        // A publish made during a restart waits for it; a node's start on a loaded machine can
        // take most of a minute (rabbitmq.sh allows 60 s).
        configuration.publishTimeout = .seconds(120)
        return configuration
    }

    @Test("a server restart mid-stream: nothing lost from the durable queue, redeliveries only of what was in flight, the topology and consumers back, a publish made during the outage delivered")
    func serverRestart() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let broker = RabbitBroker(configuration: try Self.quickReconnect(server.url))
        let queue = Self.unique("durable")
        // A transient exchange and queue: the restart forgets them, the recovery declares them again.
        let exchange = RabbitExchange(Self.unique("transient"), kind: .topic, durable: false)
        let transientQueue = RabbitQueue(Self.unique("transient-q"), durable: false)
        let arrivals = Inbox<(id: Int, deliveryCount: Int)>()
        let transientArrivals = Inbox<String>()
        let gate = Latch()
        broker.subscriber(queue, options: SubscriberOptions(ackPolicy: .ack, maxConcurrency: 2)) { (id: Int, context: MessageContext) in
            arrivals.put((id, context.message.deliveryCount))
            // Ten are settled before the restart; the rest wait in the queue (or in flight) for it.
            if id >= 10 { await gate.wait() }
        }
        broker.subscriber(.queue(transientQueue, exchange: exchange, routingKey: "events.#")) { (text: String, _: MessageContext) in
            transientArrivals.put(text)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            for id in 0..<30 {
                try await broker.publish(id, to: .queue(queue), options: RabbitPublishOptions(persistent: true))
            }
            try await arrivals.wait(count: 12, timeout: .seconds(20))
            try await broker.publish("before", to: .exchange(exchange.name, routingKey: "events.before"))
            try await transientArrivals.wait(count: 1)

            try await server.stop()
            gate.open()
            // Published while the server is down: it goes once the connection is back.
            async let during: PublishReceipt? = broker.publish(30, to: .queue(queue), options: RabbitPublishOptions(persistent: true))
            try await server.start()
            _ = try await during
            try await broker.publish("after", to: .exchange(exchange.name, routingKey: "events.after"))
            #expect(try await transientArrivals.wait(count: 2, timeout: .seconds(20)) == ["before", "after"])

            // Every id, and redeliveries on top: wait until each id arrived at least once.
            var all = try await arrivals.wait(count: 31, timeout: .seconds(30))
            while Set(all.map(\.id)).count < 31 {
                all = try await arrivals.wait(count: all.count + 1, timeout: .seconds(30))
            }
            #expect(Set(all.map(\.id)) == Set(0...30))
            // Only what was in flight when the server went (at most the two handlers' messages,
            // whose acks the restart lost) came twice, and then flagged as redelivered.
            let repeated = Dictionary(grouping: all, by: \.id).filter { $0.value.count > 1 }
            #expect(repeated.count <= 2)
            for (_, deliveries) in repeated { #expect(deliveries.last!.deliveryCount >= 2) }
            #expect(all.filter { $0.id < 10 }.count == 10)
        }
        try await server.stop()
    }

    @Test("with reconnecting off, a lost connection stops the broker with the server's reason")
    func reconnectOff() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        var configuration = try RabbitConfiguration(url: server.url)
        configuration.reconnect = nil
        let broker = RabbitBroker(configuration: configuration)
        broker.subscriber(Self.unique("off")) { (_: String, _: MessageContext) in }
        try await broker.transport.connect()
        await #expect(throws: RabbitError.self) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await broker.transport.run() }
                try await server.stop()
                try await group.waitForAll()
            }
        }
        await broker.transport.close()
    }

    @Test("a rejected message goes to the queue's dead-letter exchange, with x-death")
    func deadLetter() async throws {
        let broker = try RabbitBroker(url: Self.url)
        let queue = Self.unique("work")
        let deadLetters = Self.unique("dead")
        let arrivals = Inbox<IncomingMessage>()
        let work = RabbitQueue(queue, arguments: ["x-dead-letter-exchange": .string(""), "x-dead-letter-routing-key": .string(deadLetters)])
        struct Refused: Error {}
        // The default policy for RabbitMQ, rejectOnError: a failure rejects without requeueing.
        broker.subscriber(.queue(work)) { (_: String, _: MessageContext) in throw Refused() }
        broker.subscriber(deadLetters) { (_: String, context: MessageContext) in arrivals.put(context.message) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("poison", to: .queue(queue))
            let dead = try #require(try await arrivals.wait(count: 1).first)
            #expect(String(buffer: dead.body) == "poison")
            #expect(dead.headers["x-death"]?.contains("rejected") == true)
            #expect(dead.headers["x-first-death-queue"] == queue)
        }
        try await broker.transport.deleteQueue(queue)
        try await broker.transport.deleteQueue(deadLetters)
    }

    @Test("routing-key captures; exchange-to-exchange bindings and headers exchanges route; an unroutable mandatory publish fails; a missing exchange is a 404 and the next publish works")
    func routing() async throws {
        let broker = try RabbitBroker(url: Self.url)
        let front = RabbitExchange(Self.unique("front"), kind: .topic, autoDelete: true)
        let audit = RabbitExchange(Self.unique("audit"), kind: .fanout, autoDelete: true, internal: true)
        let byHeader = RabbitExchange(Self.unique("by-header"), kind: .headers, autoDelete: true)
        let audited = Inbox<String>()
        let matched = Inbox<String>()
        try await broker.transport.declareExchange(front)
        try await broker.transport.declareExchange(audit)
        try await broker.transport.bind(exchange: audit.name, to: front.name, routingKey: "audit.#")
        broker.subscriber(.queue(RabbitQueue(Self.unique("audited"), autoDelete: true), exchange: audit)) { (text: String, _: MessageContext) in
            audited.put(text)
        }
        broker.subscriber(.queue(RabbitQueue(Self.unique("matched"), autoDelete: true), exchange: byHeader, arguments: ["x-match": .string("all"), "region": .string("eu")])) {
            (text: String, _: MessageContext) in matched.put(text)
        }
        let regions = Inbox<[String: String]>()
        broker.subscriber(.queue(RabbitQueue(Self.unique("regions"), autoDelete: true), exchange: front, routingKey: "orders.{region}.created")) {
            (_: String, context: MessageContext) in regions.put(try context.message.rabbit.path)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            // `{region}` binds as `*` and captures the word, like FastStream's path parameters.
            try await broker.publish("order", to: .exchange(front.name, routingKey: "orders.eu.created"))
            #expect(try await regions.wait(count: 1) == [["region": "eu"]])
            try await broker.publish("login", to: .exchange(front.name, routingKey: "audit.login"))
            #expect(try await audited.wait(count: 1) == ["login"])
            // Nothing is bound for `billing.paid`: returned, so the publish fails.
            await #expect(throws: RabbitError.self) { try await broker.publish("lost", to: .exchange(front.name, routingKey: "billing.paid")) }
            try await broker.publish("eu", to: .exchange(byHeader.name), headers: ["region": "eu"])
            #expect(try await matched.wait(count: 1) == ["eu"])
            do {
                try await broker.publish("nowhere", to: .exchange(Self.unique("missing"), routingKey: "x"))
                Issue.record("a publish to a missing exchange succeeded")
            } catch let error as RabbitError {
                #expect(error.code == .closedByServer)
                #expect(error.replyCode == 404)
                #expect(error.message.contains("NOT_FOUND"))
            }
            try await broker.publish("still publishing", to: .exchange(front.name, routingKey: "audit.after"))
            #expect(try await audited.wait(count: 2) == ["login", "still publishing"])
        }
    }

    @Test("a reply to FastStream's reply_to form `queue|exchange` goes through that exchange with the queue as routing key")
    func replyThroughExchange() async throws {
        let broker = try RabbitBroker(url: Self.url)
        let requests = Self.unique("asks")
        let replies = RabbitExchange(Self.unique("replies"), kind: .direct, autoDelete: true)
        let replyQueue = RabbitQueue(Self.unique("answers"), autoDelete: true)
        let answers = Inbox<IncomingMessage>()
        broker.subscriber(requests) { (text: String, _: MessageContext) -> String in text.uppercased() }
        broker.subscriber(.queue(replyQueue, exchange: replies, routingKey: replyQueue.name)) { (_: String, context: MessageContext) in
            answers.put(context.message)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("ping", to: .queue(requests), correlationID: "ask-1", replyTo: "\(replyQueue.name)|\(replies.name)")
            let answer = try #require(try await answers.wait(count: 1).first)
            #expect(String(buffer: answer.body) == "PING")
            #expect(answer.correlationID == "ask-1")
            #expect(try answer.rabbit.exchange == replies.name)
        }
        try await broker.transport.deleteQueue(requests)
    }

    @Test("quorum and stream queues declare; durable, exclusive and auto-delete queues; passive declarations of what is missing are 404")
    func queueKinds() async throws {
        let broker = try RabbitBroker(url: Self.url)
        let quorum = RabbitQueue(Self.unique("quorum"), arguments: ["x-queue-type": .string("quorum")])
        let stream = RabbitQueue(Self.unique("stream"), arguments: ["x-queue-type": .string("stream"), "x-max-length-bytes": .int64(10_000_000)])
        let limited = RabbitQueue(Self.unique("limited"), arguments: ["x-max-length": .int32(2), "x-message-ttl": .int32(60_000)])
        for queue in [quorum, stream, limited] { try await broker.transport.declareQueue(queue) }
        try await broker.transport.declareQueue(RabbitQueue(quorum.name, declare: false))
        await #expect(throws: RabbitError.self) { try await broker.transport.declareQueue(RabbitQueue(Self.unique("absent"), declare: false)) }
        await #expect(throws: RabbitError.self) { try await broker.transport.declareExchange(RabbitExchange(Self.unique("absent"), declare: false)) }
        // A quorum queue counts deliveries: a nacked message comes back with x-delivery-count.
        let counts = Inbox<Int>()
        broker.subscriber(.queue(quorum), options: SubscriberOptions(ackPolicy: .nackOnError)) { (_: String, context: MessageContext) in
            counts.put(context.message.deliveryCount)
            struct Again: Error {}
            if context.message.deliveryCount < 3 { throw Again() }
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("again", to: .queue(quorum.name))
            #expect(try await counts.wait(count: 3) == [1, 2, 3])
        }
        for queue in [quorum, stream, limited] { try await broker.transport.deleteQueue(queue.name) }
    }

    @Test("prefetch: the node sends `RabbitSource.prefetch` deliveries ahead of a busy handler of concurrency 1 (by default only one), each acked after handling", arguments: [nil, 8] as [Int?])
    func prefetch(_ prefetch: Int?) async throws {
        let broker = try RabbitBroker(url: Self.url)
        let queue = Self.unique("prefetch")
        let published = 20
        let gate = Gate()
        let handled = Inbox<String>()
        broker.subscriber(.queue(RabbitQueue(queue, autoDelete: true), prefetch: prefetch)) { (text: String, _: MessageContext) in
            handled.put(text)
            if text == "0" { try await gate.pass() }
        }
        let connection = try await AMQPConnection.connect(try RabbitConfiguration(url: Self.url))
        let probe = try await connection.openChannel()
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publishBatch((0..<published).map(String.init), to: queue)
            // The handler holds the first delivery; the node has sent what the prefetch allows,
            // and its queue process answers the declaration after that push.
            try await handled.wait(count: 1)
            let declared = try await probe.call(.queueDeclare(queue: queue, passive: true, durable: true, exclusive: false, autoDelete: true, noWait: false, arguments: [:]))
            guard case .queueDeclareOk(_, let ready, _) = declared else { Issue.record("unexpected \(declared)"); return }
            #expect(Int(ready) == published - (prefetch ?? 1))
            gate.open()
            #expect(try await handled.wait(count: published) == (0..<published).map(String.init))
            // Every one acked: nothing ready, nothing unacknowledged left to come back.
            let after = try await probe.call(.queueDeclare(queue: queue, passive: true, durable: true, exclusive: false, autoDelete: true, noWait: false, arguments: [:]))
            guard case .queueDeclareOk(_, let left, _) = after else { Issue.record("unexpected \(after)"); return }
            #expect(left == 0)
        }
        await connection.close()
    }

    @Test("batch consume: one process span linking each message's creation context; a batch fills within maxWait")
    func batchConsume() async throws {
        let tracer = InMemoryTracer()
        let broker = try RabbitBroker(url: Self.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let queue = Self.unique("batch")
        let batches = Inbox<[String]>()
        broker.subscriber(queue, batch: BatchOptions(maxMessages: 5, maxWait: .milliseconds(500))).handle { (texts: [String], _: MessageContext) in
            batches.put(texts)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publishBatch(["a", "b", "c", "d", "e", "f", "g"], to: queue)
            let received = try await batches.wait(count: 2)
            #expect(received.flatMap { $0 } == ["a", "b", "c", "d", "e", "f", "g"])
            #expect(received.first?.count == 5)
        }
        let processes = tracer.finishedSpans.filter { $0.operationName == "process \(queue)" }
        #expect(processes.count == 2)
        let creates = tracer.finishedSpans.filter { $0.operationName == "create \(queue)" }
        #expect(creates.count == 7)
        let linked = Set(processes.flatMap { $0.links.compactMap { $0.context.inMemorySpanContext?.spanID } })
        #expect(linked == Set(creates.map(\.spanID)))
        #expect(processes.first?.attribute("messaging.batch.message_count")?.toSpanAttribute() == .int64(5))
    }

    @Test("conventions .fastStream: FastStream's span names and attributes for RabbitMQ (default.queue, exchange.routing_key)")
    func fastStreamConventions() async throws {
        let tracer = InMemoryTracer()
        let broker = try RabbitBroker(url: Self.url, middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer)])
        let queue = Self.unique("fs")
        let exchange = RabbitExchange(Self.unique("fs-ex"), kind: .topic, autoDelete: true)
        let inbox = Inbox<String>()
        broker.subscriber(queue) { (text: String, _: MessageContext) in inbox.put(text) }
        broker.subscriber(.queue(RabbitQueue(Self.unique("fs-q"), autoDelete: true), exchange: exchange, routingKey: "orders.*")) { (text: String, _: MessageContext) in
            inbox.put(text)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("one", to: RabbitDestination.queue(queue))
            try await broker.publish("two", to: .exchange(exchange.name, routingKey: "orders.created"))
            try await inbox.wait(count: 2)
        }
        let spans = tracer.finishedSpans
        // As in ../shared/reference/faststream-seed-spans-rabbit.json.
        let publish = try spans.named("default.\(queue) publish")
        _ = try spans.named("default.\(queue) create")
        let process = try spans.named("default.\(queue) process")
        #expect(publish.attribute("messaging.destination.name")?.toSpanAttribute() == "")
        #expect(publish.attribute("messaging.rabbitmq.destination.routing_key")?.toSpanAttribute() == .string(queue))
        #expect(process.attribute("messaging.destination_publish.name")?.toSpanAttribute() == "")
        #expect(process.attribute("messaging.rabbitmq.message.delivery_tag") != nil)
        let topicPublish = try spans.named("\(exchange.name).orders.created publish")
        #expect(topicPublish.attribute("messaging.destination.name")?.toSpanAttribute() == .string(exchange.name))
        let topicProcess = try spans.named("\(exchange.name).orders.created process")
        #expect(topicProcess.attribute("messaging.destination_publish.name")?.toSpanAttribute() == .string(exchange.name))
        try await broker.transport.deleteQueue(queue)
    }

    @Test("amqps://: TLS to a node whose CA the configuration trusts; an untrusted certificate is refused")
    func tls() async throws {
        let server = try await OwnedRabbitServer(tls: true)
        try await server.start()
        var configuration = try RabbitConfiguration(url: "amqps://guest:guest@localhost:\(server.tlsPort)/")
        #expect(configuration.tls != nil)
        configuration.tls?.trustRoots = .file(server.caCertificate)
        let broker = RabbitBroker(configuration: configuration)
        try await broker.transport.connect()
        let inbox = Inbox<String>()
        let queue = Self.unique("secure")
        broker.subscriber(queue) { (text: String, _: MessageContext) in inbox.put(text) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("over TLS", to: queue)
            #expect(try await inbox.wait(count: 1) == ["over TLS"])
        }
        let untrusted = RabbitTransport(configuration: try RabbitConfiguration(url: "amqps://guest:guest@localhost:\(server.tlsPort)/"))
        do {
            try await untrusted.connect()
            Issue.record("a certificate no trusted CA signed was accepted")
        } catch let error as RabbitError {
            #expect(error.code == .connectionClosed)
            #expect("\(error)".contains("certificate") || "\(error)".lowercased().contains("handshake"))
        }
        await untrusted.close()
        try await server.stop()
    }
}
