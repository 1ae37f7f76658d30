@testable import CourierKafka
import Courier
import Foundation
import InMemoryTracing
import NIOCore
import Testing
import Tracing

/// Kafka against a real Kafka-compatible server (tansu).
@Suite("Kafka broker")
struct KafkaBrokerTests {
    @Test("bootstrap servers with the first one down: publishing and consuming go through the next")
    func firstBootstrapServerDown() async throws {
        let server = KafkaTestServer.url.replacingOccurrences(of: "kafka://", with: "")
        // Port 1 refuses: librdkafka learns the cluster from the second address.
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(url: "kafka://127.0.0.1:1,\(server)"))
        let topic = KafkaTestServer.unique("bootstrap")
        let inbox = Inbox<String>()
        broker.subscriber(.topics(topic, start: .beginning)) { (text: String, _: MessageContext) in inbox.put(text) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let receipt = try #require(try await broker.publish("through the second", to: topic))
            #expect(receipt.kafka?.topic == topic)
            #expect(try await inbox.wait(count: 1, timeout: .seconds(30)) == ["through the second"])
        }
    }

    @Test("publish: the receipt has partition and offset; the record carries key, partition, timestamp and FastStream's headers")
    func publishAndConsume() async throws {
        let tracer = InMemoryTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let topic = KafkaTestServer.unique("single")
        let inbox = Inbox<IncomingMessage>()
        broker.subscriber(.topics(topic, start: .beginning)) { (_: String, context: MessageContext) in inbox.put(context.message) }
        let stamp = Date(timeIntervalSince1970: 1_700_000_000.123)
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let receipt = try #require(
                try await broker.publish(
                    "hello",
                    to: topic,
                    headers: ["x-tenant": "acme"],
                    options: KafkaPublishOptions(key: "order-7", partition: 2, timestamp: stamp)
                )
            )
            let position = try #require(receipt.kafka)
            #expect(position.topic == topic)
            #expect(position.partition == 2)
            #expect(position.offset == 0)
            #expect(receipt.messageID == "0-1700000000123")
            let message = try #require(try await inbox.wait(count: 1).first)
            #expect(String(buffer: message.body) == "hello")
            #expect(message.contentType == "text/plain")
            #expect(message.headers["x-tenant"] == "acme")
            #expect(message.correlationID != nil)
            #expect(message.messageID == "0-1700000000123")
            let info = try message.kafka
            #expect(info.partition == 2)
            #expect(info.keyText == "order-7")
            #expect(info.timestampMilliseconds == 1_700_000_000_123)
            #expect(!info.isTombstone)
            // The wire: FastStream's header names, content-type first.
            #expect(Array(message.headers.map(\.name).prefix(2)) == ["content-type", "correlation_id"])
        }
        let send = try tracer.finishedSpans.named("send \(topic)")
        let process = try tracer.finishedSpans.named("process \(topic)")
        #expect(process.parentSpanID == send.spanID)
        #expect(send.attribute("messaging.system")?.toSpanAttribute() == "kafka")
        #expect(send.attribute("messaging.kafka.message.key")?.toSpanAttribute() == "order-7")
        #expect(send.attribute("messaging.destination.partition.id")?.toSpanAttribute() == "2")
        #expect(send.attribute("messaging.kafka.offset")?.toSpanAttribute() == .int64(0))
        #expect(process.attribute("messaging.destination.partition.id")?.toSpanAttribute() == "2")
        #expect(process.attribute("messaging.kafka.offset")?.toSpanAttribute() == .int64(0))
        #expect(process.attribute("messaging.kafka.message.key")?.toSpanAttribute() == "order-7")
        #expect(process.attribute("messaging.kafka.message.tombstone") == nil)
        #expect(process.attribute("server.address")?.toSpanAttribute() == "127.0.0.1")
    }

    @Test("tombstones and batches: a key with a nil body has no value; a batch has a key per record and is consumed in batches per partition")
    func tombstonesAndBatches() async throws {
        let tracer = InMemoryTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let topic = KafkaTestServer.unique("batch")
        let tombstones = KafkaTestServer.unique("tombstone")
        let batches = Inbox<[IncomingMessage]>()
        let deleted = Inbox<IncomingMessage>()
        broker.subscriber(.topics(topic, start: .beginning), batch: BatchOptions(maxMessages: 10, maxWait: .milliseconds(300))).handle {
            (_: [String], context: MessageContext) in batches.put(context.messages)
        }
        broker.subscriber(.topics(tombstones, start: .beginning)) { (_: ByteBuffer, context: MessageContext) in deleted.put(context.message) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let receipts = try await broker.publishBatch(
                [("a", KafkaPublishOptions(key: "k1", partition: 0)), ("b", KafkaPublishOptions(key: "k2", partition: 0)), ("c", KafkaPublishOptions(key: "k3", partition: 0))],
                to: topic
            )
            #expect(receipts.compactMap(\.kafka?.offset) == [0, 1, 2])
            let received = try await batches.wait(count: 1, timeout: .seconds(10)).flatMap { $0 }
            var all = received
            while all.count < 3 { all += try await batches.wait(count: batches.values.count + 1).last ?? [] }
            #expect(all.map { String(buffer: $0.body) } == ["a", "b", "c"])
            #expect(try all.map { try $0.kafka.keyText } == ["k1", "k2", "k3"])
            let nothing: String? = nil
            try await broker.publish(nothing, to: tombstones, options: KafkaPublishOptions(key: "user-1"))
            let tombstone = try #require(try await deleted.wait(count: 1).first)
            #expect(try tombstone.kafka.isTombstone == true)
            #expect(try tombstone.kafka.keyText == "user-1")
            #expect(tombstone.body.readableBytes == 0)
        }
        #expect(tracer.finishedSpans.contains { $0.operationName == "process \(tombstones)" && $0.attribute("messaging.kafka.message.tombstone")?.toSpanAttribute() == true })
        let batchSpan = try #require(tracer.finishedSpans.first { $0.operationName == "process \(topic)" })
        #expect(batchSpan.links.count == (batchSpan.attribute("messaging.batch.message_count")?.toSpanAttribute()).flatMap { if case .int64(let n) = $0 { Int(n) } else { nil } })
    }

    @Test("groups and patterns: a pattern subscriber in a group gets every matching topic; manual partitions start at an offset")
    func patternsAndManualAssignment() async throws {
        let base = KafkaTestServer.unique("pattern")
        let setup = KafkaBroker(configuration: try KafkaTestServer.configuration())
        try await setup.transport.connect()
        for index in 0..<3 { try await setup.publish("early-\(index)", to: "\(base).orders", options: KafkaPublishOptions(partition: 0)) }
        try await setup.publish("other", to: "\(base).payments", options: KafkaPublishOptions(partition: 0))
        await setup.transport.close()

        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let matched = Inbox<String>()
        let fromOffset = Inbox<String>()
        let watch = AssignmentWatch()
        let escaped = base.replacingOccurrences(of: "-", with: "\\-")
        broker.subscriber(.pattern("^\(escaped)\\..*", group: KafkaTestServer.group("pattern"), start: .beginning, onRebalance: watch.listener)) {
            (body: String, _) in matched.put(body)
        }
        broker.subscriber(.partitions([KafkaTopicPartition(topic: "\(base).orders", partition: 0)], start: .offset(1))) {
            (body: String, _) in fromOffset.put(body)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            #expect(Set(try await matched.wait(count: 4, timeout: .seconds(20))) == ["early-0", "early-1", "early-2", "other"])
            #expect(try await fromOffset.wait(count: 2) == ["early-1", "early-2"])
        }
        #expect(watch.assignedCount >= 2)
    }

    @Test("ack policies with a failing handler: nack seeks back and redelivers, reject and ack commit past it, the subscriber keeps running")
    func ackPolicies() async throws {
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let topic = KafkaTestServer.unique("ack")
        let attempts = Inbox<String>()
        let deliveryCounts = Inbox<Int>()
        struct Failed: Error {}
        for policy in [AckPolicy.nackOnError, .rejectOnError, .ack, .ackFirst] {
            let name = "\(topic)-\(policy)"
            broker.subscriber(.topics(name, start: .beginning), options: SubscriberOptions(ackPolicy: policy)) { (body: String, context: MessageContext) in
                attempts.put("\(policy):\(body)")
                if policy == .nackOnError { deliveryCounts.put(context.message.deliveryCount) }
                if body == "poison", context.message.deliveryCount == 1 { throw Failed() }
            }
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            for policy in [AckPolicy.nackOnError, .rejectOnError, .ack, .ackFirst] {
                try await broker.publish("poison", to: "\(topic)-\(policy)", options: KafkaPublishOptions(partition: 0))
                try await broker.publish("next", to: "\(topic)-\(policy)", options: KafkaPublishOptions(partition: 0))
            }
            try await attempts.wait(count: 9, timeout: .seconds(15))
        }
        let seen = attempts.values
        // Redelivered once after the nack, in order, before the next record.
        #expect(seen.filter { $0.hasPrefix("nackOnError:") } == ["nackOnError:poison", "nackOnError:poison", "nackOnError:next"])
        #expect(deliveryCounts.values == [1, 2, 1])
        for policy in ["rejectOnError", "ack", "ackFirst"] {
            #expect(seen.filter { $0.hasPrefix("\(policy):") } == ["\(policy):poison", "\(policy):next"])
        }
    }

    @Test("commits: a group member that processed records commits them; the next member of the group starts after them")
    func commitsSurviveMembers() async throws {
        let topic = KafkaTestServer.unique("commit")
        let group = KafkaTestServer.group("commit")
        let first = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let seenFirst = Inbox<String>()
        let watch = AssignmentWatch()
        first.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: watch.listener), options: SubscriberOptions(ackPolicy: .ack)) {
            (body: String, _) in seenFirst.put(body)
        }
        try await withRunningApp([first]) { () async throws in
            try await watch.waitAssigned(4)
            for index in 0..<6 { try await first.publish("m\(index)", to: topic, options: KafkaPublishOptions(key: "k\(index)")) }
            try await seenFirst.wait(count: 6)
        }
        // A second member of the same group (tansu's stale-leader bug aside, which a fresh member
        // id avoids) starts from the committed offsets: it sees only what came after.
        let second = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let seenSecond = Inbox<String>()
        let secondWatch = AssignmentWatch()
        second.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: secondWatch.listener)) { (body: String, _) in seenSecond.put(body) }
        try await withRunningApp([second]) { () async throws in
            try await secondWatch.waitAssigned(4, timeout: .seconds(30))
            try await second.publish("after", to: topic)
            #expect(try await seenSecond.wait(count: 1) == ["after"])
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(seenSecond.values == ["after"])
    }

    @Test("request/reply on Kafka: a reply topic per broker, replies matched by correlation id, many in flight")
    func requestReply() async throws {
        let responder = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let requester = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let topic = KafkaTestServer.unique("rpc")
        responder.subscriber(.topics(topic, start: .beginning), options: SubscriberOptions(maxConcurrency: 4)) { (body: String, _) -> String in
            body.uppercased()
        }
        try await withRunningApp([responder, requester]) { () async throws in
            await responder.waitUntilSubscribed()
            let replies = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<8 {
                    group.addTask { try await requester.request("ping-\(index)", to: topic, as: String.self, timeout: .seconds(15)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(replies) == Set((0..<8).map { "PING-\($0)" }))
        }
    }

    @Test("a header value that is not UTF-8 fails that record alone: logged, an error span, the next record is handled")
    func malformedHeaders() async throws {
        let tracer = InMemoryTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let topic = KafkaTestServer.unique("malformed")
        let handled = Inbox<String>()
        broker.subscriber(.topics(topic, start: .beginning)) { (body: String, _) in handled.put(body) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            // One partition for both (the topic may have several): the bad record is read, and
            // fails, before the good one, whose arrival the test waits for.
            try await produceRawRecord(url: KafkaTestServer.url, topic: topic, value: "bad", headers: [("x-bad", [0xFF, 0xFE])], partition: 0)
            try await broker.publish("good", to: topic, options: KafkaPublishOptions(partition: 0))
            #expect(try await handled.wait(count: 1) == ["good"])
        }
        let failed = tracer.finishedSpans.filter { $0.operationName == "process \(topic)" && $0.status?.code == .error }
        #expect(failed.count == 1)
    }

    @Test("fire and forget returns without a position and still delivers; a record too large is refused with its own code")
    func fireAndForgetAndTooLarge() async throws {
        var configuration = try KafkaTestServer.configuration()
        configuration.producerProperties["message.max.bytes"] = "2000"
        let broker = KafkaBroker(configuration: configuration)
        let topic = KafkaTestServer.unique("forget")
        let received = Inbox<String>()
        broker.subscriber(.topics(topic, start: .beginning)) { (body: String, _) in received.put(body) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let receipt = try await broker.publish("quick", to: topic, options: KafkaPublishOptions(waitsForConfirmation: false))
            #expect(receipt?.kafka == nil)
            #expect(try await received.wait(count: 1) == ["quick"])
            do {
                try await broker.publish(String(repeating: "x", count: 5000), to: topic)
                Issue.record("a record past message.max.bytes was published")
            } catch let error as KafkaError {
                #expect(error.code == .messageTooLarge)
            }
        }
    }

    @Test("a producer pointed at an unreachable server fails clearly within its delivery timeout")
    func unreachableServer() async throws {
        var configuration = try KafkaConfiguration(url: "kafka://127.0.0.1:1")
        configuration.deliveryTimeout = .seconds(2)
        let broker = KafkaBroker(configuration: configuration)
        let started = ContinuousClock.now
        do {
            try await broker.publish("lost", to: KafkaTestServer.unique("nowhere"))
            Issue.record("the publish succeeded without a server")
        } catch let error as KafkaError {
            // No broker was ever reachable: the error says so, with librdkafka's connect error.
            #expect(error.code == .brokerUnavailable, "\(error)")
            #expect(error.description.contains("127.0.0.1:1"))
        }
        // Bounded, not fast: the delivery timeout (2 s) and the Swift-side deadline after it;
        // generous for a loaded CI machine, whose cooperative pool has two threads.
        #expect(ContinuousClock.now - started < .seconds(30))
        await broker.transport.close()
    }

    @Test("an invalid librdkafka property is refused at start-up with librdkafka's own text")
    func invalidProperty() async throws {
        var configuration = try KafkaTestServer.configuration()
        configuration.properties["linger.ms"] = "soon"
        let transport = KafkaTransport(configuration: configuration)
        await #expect {
            try await transport.connect()
        } throws: { error in
            guard let error = error as? KafkaError else { return false }
            // librdkafka names the property by its canonical name (linger.ms is an alias).
            return error.code == .invalidConfiguration && error.message.contains("Invalid value")
        }
        var unknown = try KafkaTestServer.configuration()
        unknown.consumerProperties["no.such.property"] = "1"
        await #expect(throws: KafkaError.self) { try await KafkaTransport(configuration: unknown).connect() }
        #expect(throws: KafkaError.self) { try KafkaConfiguration(url: "redis://127.0.0.1:6379") }
    }

    @Test("FastStream conventions: the seed pipeline first → second → third has the spans FastStream 0.7 records on Kafka")
    func fastStreamConventions() async throws {
        let tracer = InMemoryTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer)])
        let base = KafkaTestServer.unique("seed")
        let done = Inbox<String>()
        broker.subscriber(.topics("\(base)-first", start: .beginning)).publisher("\(base)-second").handle { (message: String, _) in message }
        broker.subscriber(.topics("\(base)-second", start: .beginning)).publisher("\(base)-third").handle { (message: String, _) in message }
        broker.subscriber(.topics("\(base)-third", start: .beginning)) { (message: String, _) in done.put(message) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("message", to: "\(base)-first", options: KafkaPublishOptions(partition: 0))
            try await done.wait(count: 1)
        }
        let spans = tracer.finishedSpans
        let create = try spans.named("\(base)-first create")
        #expect(attributeNames(create) == ["messaging.system", "messaging.destination.name", "messaging.message.conversation_id"])
        for topic in ["first", "second", "third"] {
            let process = try spans.named("\(base)-\(topic) process")
            // Every process span hangs under the first create span: FastStream re-sends the origin.
            #expect(process.parentSpanID == create.spanID)
            var keys = attributeNames(process)
            keys.remove("messaging.kafka.message.key")
            #expect(keys == [
                "messaging.system", "messaging.message.id", "messaging.message.conversation_id",
                "messaging.message.payload_size_bytes", "messaging.kafka.destination.partition",
                "messaging.kafka.message.offset", "messaging.destination_publish.name", "messaging.operation",
            ])
            #expect(process.attribute("messaging.system")?.toSpanAttribute() == "kafka")
            #expect(process.attribute("messaging.message.payload_size_bytes")?.toSpanAttribute() == .int64(7))
            guard case .string(let id) = process.attribute("messaging.message.id")?.toSpanAttribute() else {
                Issue.record("no message id")
                continue
            }
            #expect(id.wholeMatch(of: /\d+-\d+/) != nil, "FastStream's {offset}-{timestamp} message id, not \(id)")
        }
        for topic in ["first", "second", "third"] {
            let publish = try spans.named("\(base)-\(topic) publish")
            // The first publish names its partition, which FastStream records when given.
            #expect(attributeNames(publish).subtracting(["messaging.kafka.destination.partition"]) == ["messaging.system", "messaging.destination.name", "messaging.message.conversation_id", "messaging.operation"])
        }
    }
}

/// The names of a span's attributes.
private func attributeNames(_ span: FinishedInMemorySpan) -> Set<String> {
    var names: Set<String> = []
    span.attributes.forEach { name, _ in names.insert(name) }
    return names
}
