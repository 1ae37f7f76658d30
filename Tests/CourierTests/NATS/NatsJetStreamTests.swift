@testable import CourierNATS
import Courier
import Foundation
import InMemoryTracing
import NIOCore
import Testing
import Tracing

/// JetStream and key-value against a real nats-server with `-js`.
@Suite("NATS JetStream")
struct NatsJetStreamTests {
    @Test("streams: declared by the subscriber, publish waits for the PubAck, a durable pull consumer acks")
    func pullConsumer() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let streamName = NatsTestServer.uniqueStream("orders")
        let subject = NatsTestServer.unique("orders")
        let stream = NatsStream(streamName, subjects: [subject], storage: .memory, maxAge: .seconds(60))
        let inbox = Inbox<IncomingMessage>()
        broker.subscriber(.jetStream(subject, stream: stream, consumer: .pull("billing"))) { (_: Order, context: MessageContext) in
            inbox.put(context.message)
        }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish(Order(id: 7, item: "tea"), to: .jetStream(subject, stream: streamName))
            let message = try #require(try await inbox.wait(count: 1).first)
            #expect(try message.decode(as: Order.self) == Order(id: 7, item: "tea"))
            #expect(try message.nats.jetStream?.stream == streamName)
            #expect(try message.nats.jetStream?.consumer == "billing")
            #expect(message.deliveryCount == 1)
            #expect(message.messageID == "1", "the stream sequence is the message id")
            // A subject no stream captures: nothing answers, and the JetStream API says no stream
            // takes it, so the publish fails at once (an election is waited out: NatsClusterTests).
            let started = ContinuousClock.now
            let refused = await #expect(throws: NatsError.self) {
                try await broker.publish("lost", to: .jetStream(NatsTestServer.unique("nostream")))
            }
            #expect(refused?.code == .noResponders, "\(String(describing: refused))")
            #expect(ContinuousClock.now - started < .seconds(15), "failed at once, not after the 30 s publish timeout")
        }
        let admin = try NatsTestServer.admin()
        let consumer = try await admin.consumerState(stream: streamName, consumer: "billing")
        #expect(consumer.ackPending == 0)
        #expect(consumer.pending == 0)
        let process = try tracer.finishedSpans.named("process \(subject)")
        let send = try tracer.finishedSpans.named("send \(subject)")
        #expect(process.parentSpanID == send.spanID)
        #expect(process.attribute("messaging.consumer.group.name")?.toSpanAttribute() == "billing")
        #expect(process.attribute("messaging.message.id")?.toSpanAttribute() == "1")
        try await admin.deleteStream(streamName)
        await admin.close()
    }

    @Test("Nats-Msg-Id: a repeat within the duplicate window is stored once; the PubAck comes back through the middleware as a receipt")
    func deduplication() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let transport = broker.transport
        let streamName = NatsTestServer.uniqueStream("dedupe")
        let subject = NatsTestServer.unique("dedupe")
        try await transport.declareStream(NatsStream(streamName, subjects: [subject], storage: .memory))
        let options = NatsPublishOptions(deduplicationID: "order-1")
        let first = try #require(try await broker.publish("a", to: .jetStream(subject), options: options)?.nats)
        let second = try #require(try await broker.publish("a", to: .jetStream(subject), options: options)?.nats)
        #expect(first.stream == streamName)
        #expect(!first.duplicate)
        #expect(second.duplicate)
        #expect(second.sequence == first.sequence)
        #expect(tracer.finishedSpans.filter { $0.operationName == "send \(subject)" }.count == 2, "both publishes were traced")
        let batch = try await broker.publishBatch(["b", "c"], to: .jetStream(subject))
        #expect(batch.compactMap(\.nats?.sequence) == [first.sequence + 1, first.sequence + 2])
        #expect(try await transport.streamState(streamName).messages == 3)
        try await transport.deleteStream(streamName)
        await transport.close()
    }

    @Test("ack policies: nack redelivers after the delay with a higher delivery count, reject terminates, in-progress extends the ack wait")
    func ackPolicies() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let streamName = NatsTestServer.uniqueStream("acks")
        let base = NatsTestServer.unique("acks")
        let stream = NatsStream(streamName, subjects: ["\(base).>"], storage: .memory)
        try await broker.transport.declareStream(stream)

        let retried = Inbox<Int>()
        var retry = NatsConsumer.push("retry")
        retry.nackDelay = .milliseconds(200)
        broker.subscriber(.jetStream("\(base).retry", stream: streamName, consumer: retry), options: SubscriberOptions(ackPolicy: .nackOnError)) {
            (_: String, context: MessageContext) in
            retried.put(context.message.deliveryCount)
            if context.message.deliveryCount == 1 { throw TestFailure() }
        }
        let rejected = Inbox<Int>()
        broker.subscriber(.jetStream("\(base).reject", stream: streamName, consumer: .pull("reject"))) { (_: String, context: MessageContext) in
            rejected.put(context.message.deliveryCount)
            throw TestFailure()
        }
        var slow = NatsConsumer.pull("slow")
        // The handler runs longer than the ack wait; its in-progress signals come far enough inside
        // the wait (700 ms of 2 s) that a loaded machine still sends them in time.
        slow.ackWait = .seconds(2)
        let slowRuns = Inbox<Int>()
        broker.subscriber(.jetStream("\(base).slow", stream: streamName, consumer: slow)) { (_: String, context: MessageContext) in
            slowRuns.put(context.message.deliveryCount)
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(700))
                try await context.message.nats.inProgress()
            }
        }
        try await withRunningNats(broker) { () async throws in
            let started = ContinuousClock.now
            try await broker.publish("once more", to: .jetStream("\(base).retry"))
            try await broker.publish("never", to: .jetStream("\(base).reject"))
            try await broker.publish("patience", to: .jetStream("\(base).slow"))
            #expect(try await retried.wait(count: 2) == [1, 2])
            #expect(ContinuousClock.now - started >= .milliseconds(200), "the redelivery waited for the nack delay")
            try await rejected.wait(count: 1)
            try await slowRuns.wait(count: 1)
            try await Task.sleep(for: .milliseconds(3_200))
        }
        #expect(rejected.values == [1], "a terminated message is not delivered again")
        #expect(slowRuns.values == [1], "in-progress kept the slow message from being redelivered")
        let admin = try NatsTestServer.admin()
        let rejectState = try await admin.consumerState(stream: streamName, consumer: "reject")
        #expect(rejectState.ackPending == 0)
        try await admin.deleteStream(streamName)
        await admin.close()
    }

    @Test("settlement parameters: nack(delay:) redelivers after the handler's own delay; nack(requeue: false) terminates")
    func settlementParameters() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let streamName = NatsTestServer.uniqueStream("settle")
        let base = NatsTestServer.unique("settle")
        try await broker.transport.declareStream(NatsStream(streamName, subjects: ["\(base).>"], storage: .memory))
        let delayed = Inbox<(Int, ContinuousClock.Instant)>()
        broker.subscriber(.jetStream("\(base).delayed", stream: streamName, consumer: .pull("delayed")), options: SubscriberOptions(ackPolicy: .manual)) {
            (_: String, context: MessageContext) in
            delayed.put((context.message.deliveryCount, .now))
            if context.message.deliveryCount == 1 {
                try await context.nack(delay: .milliseconds(400))
            } else {
                try await context.ack()
            }
        }
        let dropped = Inbox<Int>()
        broker.subscriber(.jetStream("\(base).dropped", stream: streamName, consumer: .pull("dropped")), options: SubscriberOptions(ackPolicy: .manual)) {
            (_: String, context: MessageContext) in
            dropped.put(context.message.deliveryCount)
            try await context.nack(requeue: false)
        }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("later", to: .jetStream("\(base).delayed"))
            try await broker.publish("never again", to: .jetStream("\(base).dropped"))
            let deliveries = try await delayed.wait(count: 2)
            #expect(deliveries.map(\.0) == [1, 2])
            #expect(deliveries[1].1 - deliveries[0].1 >= .milliseconds(400), "the redelivery waited for the handler's delay")
            try await dropped.wait(count: 1)
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(dropped.values == [1], "nack(requeue: false) terminated the message")
        let admin = try NatsTestServer.admin()
        #expect(try await admin.consumerState(stream: streamName, consumer: "dropped").ackPending == 0)
        try await admin.deleteStream(streamName)
        await admin.close()
    }

    @Test("pull batches: one delivery of several messages, one process span linking each creation context")
    func pullBatch() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let streamName = NatsTestServer.uniqueStream("batch")
        let subject = NatsTestServer.unique("batch")
        try await broker.transport.declareStream(NatsStream(streamName, subjects: [subject], storage: .memory))
        try await broker.publishBatch(Array(1...5), to: .jetStream(subject))
        let batches = Inbox<[Int]>()
        broker.subscriber(.jetStream(subject, stream: streamName, consumer: .pull("batcher", batchSize: 5)), batch: BatchOptions(maxMessages: 5))
            .handle { (numbers: [Int], _) in batches.put(numbers) }
        try await withRunningNats(broker) { () async throws in
            let received = try await batches.wait(count: 1)
            #expect(received.flatMap { $0 }.sorted() == [1, 2, 3, 4, 5])
            try await batches.wait(count: received.flatMap { $0 }.count == 5 ? 1 : 2)
        }
        let firstBatch = try #require(batches.values.first)
        let processes = tracer.finishedSpans.filter { $0.operationName == "process \(subject)" }
        let spanOfFirst = try #require(processes.first { $0.links.count == firstBatch.count })
        #expect(spanOfFirst.attribute("messaging.batch.message_count")?.toSpanAttribute() == .int64(Int64(firstBatch.count)))
        try await NatsTestServer.deleteStream(streamName)
    }

    @Test("push consumers in a queue group share a durable consumer; a JetStream request is answered through reply_to")
    func pushQueueAndRequest() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let streamName = NatsTestServer.uniqueStream("push")
        let subject = NatsTestServer.unique("push")
        let stream = NatsStream(streamName, subjects: [subject], storage: .memory)
        let handled = Inbox<String>()
        for _ in 0..<2 {
            broker.subscriber(.jetStream(subject, stream: stream, consumer: .push("pushers", queue: "pushers"))) { (text: String, context: MessageContext) -> String in
                handled.put(text)
                #expect(context.message.replyTo?.hasPrefix("_INBOX.") == true || text != "question")
                return text.uppercased()
            }
        }
        try await withRunningNats(broker) { () async throws in
            for number in 1...10 { try await broker.publish("m\(number)", to: .jetStream(subject)) }
            #expect(Set(try await handled.wait(count: 10)).count == 10)
            let reply = try await broker.request("question", to: .jetStream(subject))
            #expect(String(buffer: reply.body) == "QUESTION")
        }
        #expect(handled.values.count == 11, "each message handled once across the queue group")
        try await NatsTestServer.deleteStream(streamName)
    }

    @Test("server restart during consumption: a durable consumer on a file stream loses nothing")
    func restartLosesNothing() async throws {
        let server = try OwnedNatsServer(arguments: ["-js"])
        try await server.start()
        var configuration = NatsConfiguration(servers: [server.url])
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(100))
        let producer = NatsBroker(configuration: configuration)
        let subject = "restart.orders"
        try await producer.transport.declareStream(NatsStream("RESTART", subjects: [subject], storage: .file))
        for number in 1...20 { try await producer.publish(number, to: .jetStream(subject)) }
        await producer.transport.close()

        let broker = NatsBroker(configuration: configuration)
        let handled = Inbox<Int>()
        var consumer = NatsConsumer.pull("restart", batchSize: 2, expires: .seconds(1))
        consumer.ackWait = .seconds(2)
        broker.subscriber(.jetStream(subject, stream: "RESTART", consumer: consumer)) { (number: Int, _) in
            try await Task.sleep(for: .milliseconds(20))
            handled.put(number)
        }
        try await withRunningNats(broker) { () async throws in
            try await handled.wait(count: 5)
            await server.kill()
            try await server.start()
            try await waitUntil(handled, holdsAllOf: Set(1...20), timeout: .seconds(30))
        }
        #expect(Set(handled.values) == Set(1...20), "every message handled at least once")
        await server.kill()
    }

    @Test("key-value watch: puts and deletes arrive as entries, each in a trace of its own")
    func keyValueWatch() async throws {
        let tracer = InMemoryTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let bucket = NatsTestServer.uniqueStream("config")
        try await broker.transport.declareKeyValue(bucket: bucket)
        try await broker.transport.putValue(ByteBuffer(string: "1"), forKey: "a", inBucket: bucket)
        let entries = Inbox<String>()
        broker.subscriber(.keyValue(bucket: bucket)) { (value: String, context: MessageContext) in
            let entry = try #require(try context.message.nats.keyValue)
            entries.put("\(entry.key) \(entry.operation.rawValue) \(value)")
        }
        try await withRunningNats(broker) { () async throws in
            #expect(try await entries.wait(count: 1) == ["a PUT 1"])
            try await broker.transport.putValue(ByteBuffer(string: "2"), forKey: "b", inBucket: bucket)
            try await broker.transport.deleteValue(forKey: "a", inBucket: bucket)
            #expect(try await entries.wait(count: 3) == ["a PUT 1", "b PUT 2", "a DEL "])
        }
        let processes = tracer.finishedSpans.filter { $0.operationName == "process \(bucket)" }
        #expect(processes.count == 3)
        #expect(processes.allSatisfy { $0.parentSpanID == nil })
        #expect(Set(processes.map(\.traceID)).count == 3)
        try await NatsTestServer.deleteStream("KV_\(bucket)")
    }
}

struct TestFailure: Error {}

/// Waits until `inbox` holds every value of `expected`.
func waitUntil<Value: Hashable & Sendable>(_ inbox: Inbox<Value>, holdsAllOf expected: Set<Value>, timeout: Duration) async throws {
    var count = inbox.values.count
    while !expected.isSubset(of: Set(inbox.values)) {
        count += 1
        try await inbox.wait(count: count, timeout: timeout)
    }
}
