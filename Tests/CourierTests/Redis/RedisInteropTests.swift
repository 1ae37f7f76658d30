import Courier
import CourierRedis
import CourierTraceView
import Foundation
import NIOCore
import OTel
import Testing
import Tracing

/// Courier and a real FastStream 0.7 service on one redis-server: messages and traces cross in
/// both directions, for pub/sub, lists and streams.
@Suite("Redis interop with FastStream")
struct RedisInteropTests {
    static let kinds = ["channel", "list", "stream"]

    static func destination(_ kind: String, _ name: String) -> RedisDestination {
        switch kind {
        case "list": .list(name)
        case "stream": .stream(name)
        default: .channel(name)
        }
    }

    static func source(_ kind: String, _ name: String) -> RedisSource {
        switch kind {
        case "list": .list(name)
        case "stream": .stream(name, group: "courier")
        default: .channel(name)
        }
    }

    @Test("Courier → FastStream: bodies, baggage and one connected trace", arguments: kinds)
    func courierToFastStream(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let name = RedisTestServer.unique("to-python")
        let peer = try await FastStreamPeer("consume", kind: kind, name: name, url: RedisTestServer.url)
        try await Baggage.withValue(["tenant": "acme"]) {
            try await broker.publish("hello", to: Self.destination(kind, name))
            try await broker.publish(RedisOrder(id: 1, item: "tea"), to: Self.destination(kind, name))
            try await broker.publish(ByteBuffer(bytes: [0xFF, 0x00]), to: Self.destination(kind, name))
        }
        let output = try await peer.result()
        #expect(output.received.map(\.type) == ["str", "dict", "bytes"])
        #expect(output.received.map(\.value) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        #expect(output.received.allSatisfy { $0.baggage == ["tenant": "acme"] })

        let sends = tracer.finishedSpans.filter { $0.name == "send \(name)" }
        let processes = output.spans.filter { $0.name == "\(name) process" }
        try #require(sends.count == 3 && processes.count == 3)
        for process in processes {
            let send = try #require(sends.first { $0.traceID == process.traceID }, "FastStream's process span is in no Courier trace")
            #expect(process.parentSpanID == send.spanID)
        }
    }

    @Test("FastStream → Courier: bodies, baggage and one connected trace", arguments: kinds)
    func fastStreamToCourier(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let name = RedisTestServer.unique("from-python")
        let inbox = Inbox<FastStreamPeer.Arrival>()
        broker.subscriber(Self.source(kind, name)) { (body: ByteBuffer, context: MessageContext) in
            inbox.put(FastStreamPeer.arrival(body, context))
        }
        let output = try await withRunningRedis(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer("publish", kind: kind, name: name, url: RedisTestServer.url)
            let output = try await peer.result()
            FastStreamPeer.expectPublishedBodies(try await inbox.wait(count: 3))
            return output
        }
        let processes = tracer.finishedSpans.filter { $0.name == "process \(name)" }
        try #require(processes.count == 3)
        try FastStreamPeer.expectConnected(processes, to: output)
    }
}

struct RedisOrder: Codable, MessageCodable {
    var id: Int
    var item: String
}
