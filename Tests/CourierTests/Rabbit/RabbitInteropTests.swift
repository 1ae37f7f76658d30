import Courier
@testable import CourierRabbit
import Foundation
import NIOCore
import Testing
import Tracing

/// Courier and a real FastStream 0.7 service (`faststream.rabbit`, aio-pika) on one RabbitMQ:
/// messages, headers, baggage, requests and traces cross both ways, through the default exchange
/// and through a topic exchange.
@Suite("RabbitMQ interop with FastStream")
struct RabbitInteropTests {
    static var url: String { RabbitConformanceTests.url }
    static let kinds = ["queue", "topic"]

    static func unique(_ prefix: String) -> String { "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    @Test("Courier → FastStream: bodies, FastStream's properties, baggage and one connected trace", arguments: kinds)
    func courierToFastStream(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try RabbitBroker(url: Self.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let queue = Self.unique("to-python")
        let exchange = Self.unique("orders")
        let extra = kind == "topic" ? ["--exchange", exchange, "--routing-key", "orders.*"] : []
        let peer = try await FastStreamPeer("consume", broker: "rabbit", kind: kind, name: queue, url: Self.url, extra: extra)
        let destination: RabbitDestination = kind == "topic" ? .exchange(exchange, routingKey: "orders.created") : .queue(queue)
        try await Baggage.withValue(["tenant": "acme"]) {
            try await broker.publish("hello", to: destination, correlationID: "corr-1")
            try await broker.publish(Order(id: 1, item: "tea"), to: destination)
            try await broker.publish(ByteBuffer(bytes: [0xFF, 0x00]), to: destination, headers: ["x-courier": "yes"])
        }
        let output = try await peer.result()
        await broker.transport.close()
        #expect(output.received.map(\.type) == ["str", "dict", "bytes"])
        #expect(output.received.map(\.value) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        #expect(output.received.allSatisfy { $0.baggage == ["tenant": "acme"] })
        #expect(output.received.last?.headers["x-courier"] == "yes")
        // The semantic conventions' producer-side name: `{exchange}:{routing key}`, or the queue
        // alone through the default exchange.
        let name = kind == "topic" ? "\(exchange):orders.created" : queue
        let sends = tracer.finishedSpans.filter { $0.name == "send \(name)" }
        let processes = output.spans.filter { $0.name.hasSuffix(" process") }
        try #require(sends.count == 3 && processes.count == 3)
        #expect(sends.allSatisfy { $0.attributes["messaging.destination.name"] == .string(name) })
        // FastStream names them `{exchange}.{routing key}` (`default` for the default exchange).
        #expect(Set(processes.map(\.name)) == [kind == "topic" ? "\(exchange).orders.created process" : "default.\(queue) process"])
        for process in processes {
            let send = try #require(sends.first { $0.traceID == process.traceID }, "FastStream's process span is in no Courier trace")
            #expect(process.parentSpanID == send.spanID)
        }
    }

    @Test("FastStream → Courier: bodies, content types, baggage and one connected trace", arguments: kinds)
    func fastStreamToCourier(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try RabbitBroker(url: Self.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let queue = Self.unique("from-python")
        let exchange = Self.unique("orders")
        let inbox = Inbox<FastStreamPeer.Arrival>()
        let source: RabbitSource = kind == "topic"
            ? .queue(RabbitQueue(queue), exchange: RabbitExchange(exchange, kind: .topic), routingKey: "orders.*")
            : .queue(RabbitQueue(queue))
        broker.subscriber(source) { (body: ByteBuffer, context: MessageContext) in
            inbox.put(FastStreamPeer.arrival(body, context))
        }
        let extra = kind == "topic" ? ["--exchange", exchange, "--routing-key", "orders.created"] : []
        let output = try await withRunningApp([broker]) { () async throws -> FastStreamPeer.Output in
            await broker.waitUntilSubscribed()
            let peer = try await FastStreamPeer("publish", broker: "rabbit", kind: kind, name: queue, url: Self.url, extra: extra)
            let output = try await peer.result()
            FastStreamPeer.expectPublishedBodies(try await inbox.wait(count: 3))
            return output
        }
        // The consumer-side name: `{exchange}:{routing key}:{queue}`, the queue once when the
        // routing key names it.
        let name = kind == "topic" ? "\(exchange):orders.created:\(queue)" : queue
        let processes = tracer.finishedSpans.filter { $0.name == "process \(name)" }
        try #require(processes.count == 3)
        #expect(processes.allSatisfy { $0.attributes["messaging.destination.name"] == .string(name) })
        #expect(processes.allSatisfy { $0.attributes["messaging.rabbitmq.message.delivery_tag"] != nil })
        try FastStreamPeer.expectConnected(processes, to: output)
    }

    @Test("Courier's batch → FastStream: every message arrives, and each of FastStream's process spans joins a Courier creation span (FastStream 0.7 has no RabbitMQ batches of its own)")
    func batchToFastStream() async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try RabbitBroker(url: Self.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let queue = Self.unique("batch-to-python")
        let peer = try await FastStreamPeer("consume", broker: "rabbit", kind: "queue", name: queue, url: Self.url)
        try await Baggage.withValue(["tenant": "acme"]) {
            _ = try await broker.publishBatch(["one", "two", "three"], to: RabbitDestination.queue(queue))
        }
        let output = try await peer.result()
        await broker.transport.close()
        #expect(output.received.map(\.value) == ["one", "two", "three"])
        #expect(output.received.allSatisfy { $0.baggage == ["tenant": "acme"] })
        let creates = tracer.finishedSpans.filter { $0.name == "create \(queue)" }
        #expect(creates.count == 3)
        let processes = output.spans.filter { $0.name.hasSuffix(" process") }
        #expect(processes.count == 3)
        let createIDs = Set(creates.map(\.spanID))
        let linked = Set(output.links.map(\.linkedSpanID))
        for process in processes {
            #expect(createIDs.contains(process.parentSpanID ?? "") || !linked.isDisjoint(with: createIDs), "FastStream's process span joins no Courier creation span")
        }
    }

    @Test("RPC across the two: Courier asks FastStream, FastStream asks Courier (direct reply-to)")
    func requestReply() async throws {
        let queue = Self.unique("rpc")
        let requester = try RabbitBroker(url: Self.url)
        let responder = try await FastStreamPeer("respond", broker: "rabbit", kind: "queue", name: queue, url: Self.url, count: 1)
        let reply = try await requester.request("ping", to: queue, timeout: .seconds(15))
        #expect(String(buffer: reply.body) == "PING")
        _ = try await responder.result()
        await requester.transport.close()

        let courierQueue = Self.unique("rpc-courier")
        let broker = try RabbitBroker(url: Self.url)
        broker.subscriber(courierQueue) { (text: String, _) -> String in text.uppercased() }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let asker = try await FastStreamPeer("request", broker: "rabbit", kind: "queue", name: courierQueue, url: Self.url)
            let output = try await asker.result()
            #expect(output.received.map(\.value) == ["PING"])
        }
    }
}
