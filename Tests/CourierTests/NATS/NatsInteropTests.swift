import Courier
@testable import CourierNATS
import Foundation
import NIOCore
import Testing
import Tracing

/// Courier and a real FastStream 0.7 service on one nats-server: messages, headers, requests
/// and traces cross in both directions, on core NATS and JetStream.
@Suite("NATS interop with FastStream")
struct NatsInteropTests {
    static let kinds = ["core", "jetstream"]

    /// The subject, and for JetStream a fresh stream capturing it.
    static func prepare(_ kind: String, _ prefix: String) async throws -> (subject: String, stream: String?) {
        let subject = NatsTestServer.unique(prefix)
        guard kind == "jetstream" else { return (subject, nil) }
        let stream = NatsTestServer.uniqueStream(prefix.replacingOccurrences(of: "-", with: "_"))
        let admin = try NatsTestServer.admin()
        try await admin.declareStream(NatsStream(stream, subjects: [subject], storage: .memory))
        await admin.close()
        return (subject, stream)
    }

    @Test("Courier → FastStream: bodies, FastStream's headers, baggage and one connected trace", arguments: kinds)
    func courierToFastStream(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let (subject, stream) = try await Self.prepare(kind, "to-python")
        let peer = try await FastStreamPeer(
            "consume", broker: "nats", kind: kind, name: subject, url: NatsTestServer.url,
            extra: stream.map { ["--stream", $0] } ?? []
        )
        let destination: NatsDestination = stream == nil ? .subject(subject) : .jetStream(subject)
        try await Baggage.withValue(["tenant": "acme"]) {
            try await broker.publish("hello", to: destination, correlationID: "corr-1")
            try await broker.publish(Order(id: 1, item: "tea"), to: destination)
            try await broker.publish(ByteBuffer(bytes: [0xFF, 0x00]), to: destination)
        }
        let output = try await peer.result()
        #expect(output.received.map(\.type) == ["str", "dict", "bytes"])
        #expect(output.received.map(\.value) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        #expect(output.received.allSatisfy { $0.baggage == ["tenant": "acme"] })
        #expect(output.received.first?.headers["correlation_id"] == "corr-1")
        #expect(output.received.map { $0.headers["content-type"] } == ["text/plain", "application/json", ""])

        let sends = tracer.finishedSpans.filter { $0.name == "send \(subject)" }
        let processes = output.spans.filter { $0.name == "\(subject) process" }
        try #require(sends.count == 3 && processes.count == 3)
        for process in processes {
            let send = try #require(sends.first { $0.traceID == process.traceID }, "FastStream's process span is in no Courier trace")
            #expect(process.parentSpanID == send.spanID)
        }
        if let stream { try await NatsTestServer.deleteStream(stream) }
    }

    @Test("FastStream → Courier: bodies, content types, baggage and one connected trace", arguments: kinds)
    func fastStreamToCourier(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let (subject, stream) = try await Self.prepare(kind, "from-python")
        let inbox = Inbox<FastStreamPeer.Arrival>()
        let source: NatsSource = stream.map { .jetStream(subject, stream: $0, consumer: .push("courier")) } ?? .subject(subject)
        broker.subscriber(source) { (body: ByteBuffer, context: MessageContext) in
            inbox.put(FastStreamPeer.arrival(body, context))
        }
        let output = try await withRunningNats(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer(
                "publish", broker: "nats", kind: kind, name: subject, url: NatsTestServer.url,
                extra: stream.map { ["--stream", $0] } ?? []
            )
            let output = try await peer.result()
            FastStreamPeer.expectPublishedBodies(try await inbox.wait(count: 3))
            return output
        }
        let processes = tracer.finishedSpans.filter { $0.name == "process \(subject)" }
        try #require(processes.count == 3)
        try FastStreamPeer.expectConnected(processes, to: output)
        if let stream { try await NatsTestServer.deleteStream(stream) }
    }

    @Test("request/reply across the two: Courier asks FastStream, FastStream asks Courier", arguments: kinds)
    func requestReply(_ kind: String) async throws {
        let tracer = try W3CPropagationTests.makeTracer()
        let (subject, stream) = try await Self.prepare(kind, "rpc")
        let extra = stream.map { ["--stream", $0] } ?? []

        let requester = try NatsBroker(url: NatsTestServer.url, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let responder = try await FastStreamPeer("respond", broker: "nats", kind: kind, name: subject, url: NatsTestServer.url, count: 1, extra: extra)
        let reply = try await requester.request("ping", to: stream == nil ? .subject(subject) : .jetStream(subject), timeout: .seconds(10))
        #expect(String(buffer: reply.body) == "PING")
        let responderOutput = try await responder.result()
        let request = try #require(tracer.finishedSpans.first { $0.name == "send \(subject)" })
        #expect(responderOutput.spans.contains { $0.name == "\(subject) process" && $0.traceID == request.traceID })
        await requester.transport.close()

        let (courierSubject, courierStream) = try await Self.prepare(kind, "rpc-courier")
        let broker = try NatsBroker(url: NatsTestServer.url)
        let source: NatsSource = courierStream.map { .jetStream(courierSubject, stream: $0, consumer: .push("responder")) } ?? .subject(courierSubject)
        broker.subscriber(source) { (text: String, _) -> String in text.uppercased() }
        try await withRunningNats(broker) { () async throws in
            let asker = try await FastStreamPeer(
                "request", broker: "nats", kind: kind, name: courierSubject, url: NatsTestServer.url,
                extra: courierStream.map { ["--stream", $0] } ?? []
            )
            let output = try await asker.result()
            #expect(output.received.map(\.value) == ["PING"])
        }
        if let stream { try await NatsTestServer.deleteStream(stream) }
        if let courierStream { try await NatsTestServer.deleteStream(courierStream) }
    }
}
