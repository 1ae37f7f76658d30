import Courier
import CourierMemory
import CourierTraceView
import Foundation
import OTel
import Testing
import Tracing

/// Propagation through a real OpenTelemetry tracer (swift-otel), the way services see each other
/// on the wire: W3C `traceparent` headers, FastStream's flags byte, malformed input.
@Suite("W3C propagation with swift-otel")
struct W3CPropagationTests {
    static func makeTracer() throws -> SpanRecorder<some Tracer> {
        var configuration = OTel.Configuration.default
        configuration.traces.exporter = .none
        configuration.traces.sampler = .alwaysOn
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        return SpanRecorder(wrapping: try OTel.makeTracingBackend(configuration: configuration).factory)
    }

    @Test("the send span's context travels as a W3C traceparent and parents the process span")
    func traceparentOnTheWire() async throws {
        let tracer = try Self.makeTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let headers = Inbox<MessageHeaders>()
        broker.subscriber("wire") { (_: String, context: MessageContext) in headers.put(context.message.headers) }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "wire")
            try await headers.wait(count: 1)
        }
        let spans = tracer.finishedSpans
        let send = try #require(spans.first { $0.name == "send wire" })
        let process = try #require(spans.first { $0.name == "process wire" })
        let traceparent = try #require(headers.values.first?["traceparent"])
        #expect(traceparent == "00-\(send.traceID)-\(send.spanID)-01")
        #expect(process.traceID == send.traceID)
        #expect(process.parentSpanID == send.spanID)
    }

    @Test("a FastStream traceparent (flags 03) continues FastStream's trace")
    func fastStreamTraceparent() async throws {
        let tracer = try Self.makeTracer()
        let transport = MemoryTransport()
        let python = Broker(transport: transport)
        let swift = Broker(transport: transport, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let done = Inbox<Void>()
        swift.subscriber("from-python") { (_: String, _) in done.put(()) }
        try await withRunningApp([swift]) {
            try await python.publish(
                "hi",
                to: "from-python",
                headers: ["traceparent": "00-401e1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b-03", "baggage": "foo=bar"]
            )
            try await done.wait(count: 1)
        }
        let process = try #require(tracer.finishedSpans.first { $0.name == "process from-python" })
        #expect(process.traceID == "401e1d9c500eb0ae17d208c9fecb9029")
        #expect(process.parentSpanID == "65d70adf366ae89b")
    }

    @Test("malformed traceparent values start a new trace and the message is still processed", arguments: [
        "00-zzzz1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b-01",
        "00-00000000000000000000000000000000-65d70adf366ae89b-01",
        "ff-401e1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b-01",
        "00-401e1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b",
        "garbage",
    ])
    func malformedTraceparent(_ traceparent: String) async throws {
        let tracer = try Self.makeTracer()
        let logs = CapturedLogs()
        let transport = MemoryTransport()
        let producer = Broker(transport: transport)
        let consumer = Broker(transport: transport, middlewares: [TelemetryMiddleware(tracer: tracer)], logger: logs.logger())
        let done = Inbox<Void>()
        consumer.subscriber("bad") { (_: String, _) in done.put(()) }
        try await withRunningApp([consumer]) {
            try await producer.publish("x", to: "bad", headers: ["traceparent": traceparent])
            try await done.wait(count: 1)
        }
        let process = try #require(tracer.finishedSpans.first { $0.name == "process bad" })
        #expect(process.parentSpanID == nil)
        #expect(process.traceID != "401e1d9c500eb0ae17d208c9fecb9029")
        #expect(process.traceID.count == 32)
        #expect(logs.contains(.debug, "malformed traceparent"))
    }

    @Test("the recorded spans render as a waterfall and as the reference JSON shape")
    func traceView() async throws {
        let tracer = try Self.makeTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let done = Inbox<Void>()
        broker.subscriber("a").publisher("b").handle { (message: String, _) in message }
        broker.subscriber("b") { (_: String, _) in done.put(()) }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "a")
            try await done.wait(count: 1)
        }
        let spans = tracer.finishedSpans
        let waterfall = Waterfall.render(spans)
        #expect(waterfall.contains("send a "))
        #expect(waterfall.contains("└─ process a"))
        #expect(waterfall.contains("    └─ process b"))

        let json = try JSONSerialization.jsonObject(with: Data(SpanJSON.encode(spans).utf8)) as? [[String: Any]]
        let objects = try #require(json)
        #expect(objects.count == 4)
        let root = try #require(objects.first { $0["name"] as? String == "send a" })
        #expect(root["parentSpanId"] is NSNull)
        #expect(root["kind"] as? String == "producer")
        #expect((root["traceId"] as? String)?.count == 32)
        #expect((root["spanId"] as? String)?.count == 16)
        #expect((root["attributes"] as? [String: Any])?["messaging.destination.name"] as? String == "a")
        #expect((root["status"] as? [String: Any])?["code"] as? String == "unset")
        #expect(root["links"] is [Any])
        #expect(root["startTimeUnixNano"] is NSNumber)
    }
}
