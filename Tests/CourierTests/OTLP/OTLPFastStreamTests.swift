import Courier
import CourierOTLP
import CourierRedis
import Testing
import Tracing

/// A Courier service traced by OTLPTracer publishes to a real FastStream 0.7 service over Redis:
/// FastStream's process span joins the trace, with Courier's send span (as exported over OTLP)
/// as its parent.
@Suite("CourierOTLP: FastStream joins the traces")
struct OTLPFastStreamTests {
    @Test("Courier (OTLPTracer) → FastStream over Redis: one connected trace per message")
    func fastStreamJoins() async throws {
        let receiver = try await OTLPReceiver()
        let tracer = OTLPTracer(configuration: .test(.httpProtobuf(endpoint: receiver.httpEndpoint), service: "courier-to-faststream"))
        let broker = try RedisBroker(url: RedisTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let name = RedisTestServer.unique("otlp-to-python")
        let peer = try await FastStreamPeer("consume", kind: "channel", name: name, url: RedisTestServer.url)
        try await withRunningService(tracer) {
            try await broker.publish("hello", to: .channel(name))
            try await broker.publish(RedisOrder(id: 1, item: "tea"), to: .channel(name))
            try await broker.publish("bye", to: .channel(name))
        }
        let output = try await peer.result()
        await receiver.stop()
        #expect(output.received.map(\.value) == ["hello", #"{"id":1,"item":"tea"}"#, "bye"])

        let sends = try receiver.spans().filter { $0.name == "send \(name)" }
        let processes = output.spans.filter { $0.name == "\(name) process" }
        try #require(sends.count == 3 && processes.count == 3)
        #expect(Set(sends.map(\.traceID)).count == 3)
        for process in processes {
            let send = try #require(sends.first { $0.traceID == process.traceID }, "FastStream's process span is in no trace OTLPTracer exported")
            #expect(process.parentSpanID == send.spanID)
            #expect(send.kind == "SPAN_KIND_PRODUCER")
        }
    }
}
