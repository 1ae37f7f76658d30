import Courier
import CourierMemory
import CourierOTLP
import OTel
import Testing
import Tracing

/// The seed pipeline (first → second → third by return values, a failing handler, a batch) traced
/// once by swift-otel and once by OTLPTracer, both exporting to the same real OTLP receiver: the
/// spans must be the same in content once ids and timestamps are normalised.
@Suite("CourierOTLP: the same spans as swift-otel")
struct OTLPConformanceTests {
    struct PaymentDeclined: Error {}

    /// Runs the seed pipeline on the in-memory broker with `tracer`; when it returns every span has ended.
    static func seedPipeline(tracer: some Tracer) async throws {
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let done = Inbox<String>()
        let failed = Inbox<String>()
        let batches = Inbox<[String]>()
        broker.subscriber("first").publisher("second").handle { (message: String, _) in message + "1" }
        broker.subscriber("second").publisher("third").handle { (message: String, _) in message + "2" }
        broker.subscriber("third") { (message: String, _) in done.put(message) }
        broker.subscriber("payments") { (message: String, _) in
            failed.put(message)
            throw PaymentDeclined()
        }
        broker.subscriber("batch", batch: BatchOptions(maxMessages: 10)).handle { (messages: [String], _) in
            batches.put(messages)
        }
        // Published before the subscribers start, so the three are consumed as one batch.
        try await broker.publishBatch(["a", "b", "c"], to: "batch")
        try await withRunningApp([broker]) {
            try await broker.publish("m", to: "first", correlationID: "c-1")
            try await broker.publish("fail", to: "payments", correlationID: "c-2")
            try await done.wait(count: 1)
            try await failed.wait(count: 1)
            try await batches.wait(count: 1)
        }
        #expect(done.values == ["m12"])
        #expect(batches.values == [["a", "b", "c"]])
    }

    /// A span with ids and times replaced by structure: its parent's and linked spans' names.
    struct Shape: Hashable, CustomStringConvertible {
        var name: String
        var kind: String
        var attributes: [String: String]
        var events: [String]
        var links: [String]
        var status: String
        var parent: String
        var sameTraceAsParent: Bool

        var description: String {
            "\(name) [\(kind)] parent=\(parent) sameTrace=\(sameTraceAsParent) status=\(status) attributes=\(attributes.sorted { $0.key < $1.key }) events=\(events) links=\(links)"
        }
    }

    static func shapes(_ spans: [ReceivedSpan]) -> [Shape] {
        var byID: [String: ReceivedSpan] = [:]
        for span in spans { byID[span.spanID] = span }
        func normalised(_ attributes: [String: String]) -> [String: String] {
            var attributes = attributes
            // Generated per message: the same in both runs only as "present".
            if attributes["messaging.message.id"] != nil { attributes["messaging.message.id"] = "<generated>" }
            let given = [#"{"stringValue":"c-1"}"#, #"{"stringValue":"c-2"}"#]
            if let id = attributes["messaging.message.conversation_id"], !given.contains(id) {
                attributes["messaging.message.conversation_id"] = "<generated>"
            }
            return attributes
        }
        return spans.map { span in
            let parent = span.parentSpanID.isEmpty ? "<root>" : (byID[span.parentSpanID]?.name ?? "<not exported>")
            return Shape(
                name: span.name,
                kind: span.kind,
                attributes: normalised(span.attributes),
                events: span.events.map { "\($0.name) \($0.attributes.sorted { $0.key < $1.key })" },
                links: span.links.map { "\(byID[$0.spanID]?.name ?? "<not exported>") \($0.attributes.sorted { $0.key < $1.key })" }.sorted(),
                status: "\(span.statusCode ?? "unset") \(span.statusMessage ?? "")",
                parent: parent,
                sameTraceAsParent: span.parentSpanID.isEmpty || byID[span.parentSpanID]?.traceID == span.traceID
            )
        }
        .sorted { $0.description < $1.description }
    }

    @Test("the seed pipeline: swift-otel and OTLPTracer send the same spans", arguments: ["http", "grpc"])
    func sameSpansAsSwiftOTel(_ transport: String) async throws {
        // swift-otel, exporting to one receiver.
        let otelReceiver = try await OTLPReceiver()
        var otelConfiguration = OTel.Configuration.default
        otelConfiguration.serviceName = "conformance"
        otelConfiguration.traces.sampler = .alwaysOn
        otelConfiguration.traces.exporter = .otlp
        otelConfiguration.traces.otlpExporter.protocol = transport == "http" ? .httpProtobuf : .grpc
        otelConfiguration.traces.otlpExporter.endpoint = transport == "http" ? otelReceiver.httpEndpoint : otelReceiver.grpcEndpoint
        otelConfiguration.metrics.enabled = false
        otelConfiguration.logs.enabled = false
        let otel = try OTel.makeTracingBackend(configuration: otelConfiguration)
        try await withRunningService(otel.service) {
            try await Self.seedPipeline(tracer: otel.factory)
        }
        await otelReceiver.stop()

        // OTLPTracer, exporting to another.
        let ourReceiver = try await OTLPReceiver()
        var configuration = OTLPTracerConfiguration.test(
            transport == "http" ? .httpProtobuf(endpoint: ourReceiver.httpEndpoint) : .grpc(endpoint: ourReceiver.grpcEndpoint),
            service: "conformance"
        )
        configuration.sampler = OTLPTracerConfiguration().sampler
        let tracer = OTLPTracer(configuration: configuration)
        try await withRunningService(tracer) {
            try await Self.seedPipeline(tracer: tracer)
        }
        await ourReceiver.stop()

        let theirs = try otelReceiver.spans()
        let ours = try ourReceiver.spans()
        // 6 for the chain, send + process for the failure, 3 creates + 1 send + 1 process for the batch.
        #expect(theirs.count == 13)
        #expect(ours.count == theirs.count)
        let theirShapes = Self.shapes(theirs)
        let ourShapes = Self.shapes(ours)
        #expect(ourShapes == theirShapes)
        for (mine, other) in zip(ourShapes, theirShapes) where mine != other {
            Issue.record("differs:\n  ours:      \(mine)\n  swift-otel: \(other)")
        }
        // The structure is real: the chain is one trace, the failure carries its exception event.
        #expect(ourShapes.contains { $0.name == "process third" && $0.parent == "send third" && $0.sameTraceAsParent })
        #expect(ourShapes.contains { $0.name == "process payments" && $0.status.hasPrefix("STATUS_CODE_ERROR") && $0.events.count == 1 })
        #expect(ourShapes.contains { $0.name == "process batch" && $0.links.count == 3 })

        for span in ours + theirs {
            #expect(span.resource["service.name"] == #"{"stringValue":"conformance"}"#)
            #expect(span.start > 0 && span.start <= span.end)
            #expect(span.traceID.count == 32 && span.spanID.count == 16)
        }
        // Each reports its own instrumentation scope, by design; everything else is the same.
        #expect(Set(theirs.map(\.scopeName)) == ["swift-otel"])
        #expect(Set(ours.map(\.scopeName)) == ["CourierOTLP"])
        #expect(tracer.exportedSpanCount == 13 && tracer.droppedSpanCount == 0 && tracer.failedExportCount == 0)
    }
}
