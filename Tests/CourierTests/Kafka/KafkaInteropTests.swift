import Courier
@testable import CourierKafka
import Foundation
import NIOCore
import Testing
import Tracing

/// Courier and a real FastStream 0.7 service on one Kafka-compatible server (tansu), with both of
/// FastStream's Kafka clients: `faststream.kafka` (aiokafka) and `faststream.confluent`
/// (librdkafka). Messages, keys, headers, baggage, requests and traces cross both ways.
@Suite("Kafka interop with FastStream")
struct KafkaInteropTests {
    static let clients = ["aiokafka", "confluent"]

    static func peer(_ mode: String, client: String, topic: String, count: Int = 3, extra: [String] = []) async throws -> FastStreamPeer {
        try await FastStreamPeer(mode, broker: "kafka", kind: "topic", name: topic, url: KafkaTestServer.url, count: count, extra: ["--client", client] + extra)
    }

    @Test("Courier → FastStream: bodies, keys, FastStream's headers, baggage and one connected trace", arguments: clients)
    func courierToFastStream(_ client: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let topic = KafkaTestServer.unique("to-python-\(client)")
        let peer = try await Self.peer("consume", client: client, topic: topic)
        try await Baggage.withValue(["tenant": "acme"]) {
            try await broker.publish("hello", to: topic, correlationID: "corr-1", options: KafkaPublishOptions(key: "k1"))
            try await broker.publish(Order(id: 1, item: "tea"), to: topic, options: KafkaPublishOptions(key: "k2"))
            try await broker.publish(ByteBuffer(bytes: [0xFF, 0x00]), to: topic, headers: ["x-courier": "yes"], options: KafkaPublishOptions(key: "k3"))
        }
        let output = try await peer.result()
        await broker.transport.close()
        #expect(output.received.map(\.type) == ["str", "dict", "bytes"])
        #expect(output.received.map(\.value) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        #expect(output.received.map(\.key) == ["k1", "k2", "k3"])
        #expect(output.received.allSatisfy { $0.baggage == ["tenant": "acme"] })
        #expect(output.received.first?.headers["correlation_id"] == "corr-1")
        #expect(output.received.last?.headers["x-courier"] == "yes")
        #expect(output.received.map { $0.headers["content-type"] } == ["text/plain", "application/json", ""])

        let sends = tracer.finishedSpans.filter { $0.name == "send \(topic)" }
        let processes = output.spans.filter { $0.name == "\(topic) process" }
        try #require(sends.count == 3 && processes.count == 3)
        for process in processes {
            let send = try #require(sends.first { $0.traceID == process.traceID }, "FastStream's process span is in no Courier trace")
            #expect(process.parentSpanID == send.spanID)
        }
    }

    @Test("FastStream → Courier: bodies, key, headers, content types, baggage and one connected trace", arguments: clients)
    func fastStreamToCourier(_ client: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let topic = KafkaTestServer.unique("from-python-\(client)")
        let inbox = Inbox<FastStreamPeer.Arrival>()
        let keys = Inbox<String>()
        let peerHeaders = Inbox<String>()
        broker.subscriber(.topics(topic, start: .beginning)) { (body: ByteBuffer, context: MessageContext) in
            inbox.put(FastStreamPeer.arrival(body, context))
            keys.put(try context.message.kafka.keyText ?? "-")
            peerHeaders.put(context.message.headers["x-peer"] ?? "-")
        }
        let output = try await withRunningApp([broker]) { () async throws -> FastStreamPeer.Output in
            await broker.waitUntilSubscribed()
            let peer = try await Self.peer("publish", client: client, topic: topic)
            let output = try await peer.result()
            FastStreamPeer.expectPublishedBodies(try await inbox.wait(count: 3))
            return output
        }
        #expect(keys.values == ["k1", "k1", "k1"])
        #expect(peerHeaders.values == ["faststream", "faststream", "faststream"])
        let processes = tracer.finishedSpans.filter { $0.name == "process \(topic)" }
        try #require(processes.count == 3)
        try FastStreamPeer.expectConnected(processes, to: output)
    }

    @Test("batches both ways: every record arrives, and each side's batch span links to the other's creation spans", arguments: clients)
    func batches(_ client: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])

        // Courier's batch → FastStream's batch subscriber.
        let toPython = KafkaTestServer.unique("batch-to-python-\(client)")
        let consumer = try await Self.peer("consume-batch", client: client, topic: toPython)
        _ = try await Baggage.withValue(["tenant": "acme"]) {
            try await broker.publishBatch([("one", KafkaPublishOptions(key: "k1")), ("two", KafkaPublishOptions(key: "k2")), ("three", KafkaPublishOptions(key: "k3"))], to: toPython)
        }
        let consumed = try await consumer.result()
        #expect(Set(consumed.received.map(\.value)) == ["one", "two", "three"])
        #expect(Set(consumed.received.compactMap(\.key)) == ["k1", "k2", "k3"])
        let creates = tracer.finishedSpans.filter { $0.name == "create \(toPython)" }
        #expect(creates.count == 3)
        #expect(consumed.links.contains { link in creates.contains { $0.spanID == link.linkedSpanID } }, "FastStream's batch span links to a Courier creation span")

        // FastStream's batch → Courier's batch subscriber.
        let fromPython = KafkaTestServer.unique("batch-from-python-\(client)")
        let bodies = Inbox<String>()
        broker.subscriber(.topics(fromPython, start: .beginning), batch: BatchOptions(maxMessages: 10, maxWait: .milliseconds(200))).handle {
            (batch: [ByteBuffer], context: MessageContext) in
            for body in batch { bodies.put(FastStreamPeer.arrival(body, context).body) }
        }
        let published = try await withRunningApp([broker]) { () async throws -> FastStreamPeer.Output in
            await broker.waitUntilSubscribed()
            let peer = try await Self.peer("publish-batch", client: client, topic: fromPython)
            let output = try await peer.result()
            try await bodies.wait(count: 3)
            return output
        }
        #expect(Set(bodies.values) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        let processes = tracer.finishedSpans.filter { $0.name == "process \(fromPython)" }
        try #require(!processes.isEmpty)
        let pythonSpanIDs = Set(published.spans.map(\.spanID))
        #expect(processes.allSatisfy { process in process.links.contains { pythonSpanIDs.contains($0.spanID) } })
    }

    @Test("request/reply across the two: Courier asks FastStream (which honours reply_to), FastStream asks Courier", arguments: clients)
    func requestReply(_ client: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let topic = KafkaTestServer.unique("rpc-\(client)")
        let requester = KafkaBroker(configuration: try KafkaTestServer.configuration(), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let responder = try await Self.peer("respond", client: client, topic: topic, count: 1)
        let reply = try await requester.request("ping", to: topic, timeout: .seconds(20))
        #expect(String(buffer: reply.body) == "PING")
        let responderOutput = try await responder.result()
        let request = try #require(tracer.finishedSpans.first { $0.name == "send \(topic)" })
        #expect(responderOutput.spans.contains { $0.name == "\(topic) process" && $0.traceID == request.traceID })
        await requester.transport.close()

        let courierTopic = KafkaTestServer.unique("rpc-courier-\(client)")
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration())
        broker.subscriber(.topics(courierTopic, start: .beginning)) { (text: String, _) -> String in text.uppercased() }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let asker = try await Self.peer("request", client: client, topic: courierTopic)
            let output = try await asker.result()
            #expect(output.received.map(\.value) == ["PING"])
        }
    }
}
