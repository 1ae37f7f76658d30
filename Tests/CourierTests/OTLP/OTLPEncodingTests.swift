import Courier
import CourierOTLP
import Foundation
import Testing
import Tracing

/// The hand-written protobuf encoder, checked by a real decoder: opentelemetry-proto's generated
/// Python classes behind a real OTLP/HTTP and OTLP/gRPC server.
@Suite("CourierOTLP: encoding checked by a real OTLP receiver")
struct OTLPEncodingTests {
    struct PaymentDeclined: Error, CustomStringConvertible {
        var description: String { "card declined" }
    }

    @Test("every field of span, event, link, status, resource and scope decodes as sent", arguments: ["http", "grpc"])
    func roundTrip(_ transport: String) async throws {
        let receiver = try await OTLPReceiver()
        var configuration = OTLPTracerConfiguration.test(
            transport == "http" ? .httpProtobuf(endpoint: receiver.httpEndpoint) : .grpc(endpoint: receiver.grpcEndpoint),
            service: "round-trip"
        )
        configuration.resourceAttributes = ["deployment.environment.name": "test", "service.name": "ignored"]
        configuration.headers = ["X-Api-Key": "secret-1"]
        let tracer = OTLPTracer(configuration: configuration)
        var remote = ServiceContext.topLevel
        tracer.extract(
            ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=abc,other=1"],
            into: &remote,
            using: DictionaryExtractor()
        )
        let longText = String(repeating: "x", count: 300)  // lengths above one varint byte
        try await withRunningService(tracer) {
            let span = tracer.startSpan("process orders", context: remote, ofKind: .consumer, at: FixedInstant(nanosecondsSinceEpoch: 1_000))
            span.attributes = [
                "text": .string("hello"),
                "long": .string(longText),
                "int": .int64(-42),
                "int32": .int32(7),
                "double": .double(1.5),
                "bool": .bool(true),
                "strings": .stringArray(["a", "b"]),
                "ints": .int64Array([1, -2]),
                "int32s": .int32Array([3]),
                "doubles": .doubleArray([0.25]),
                "bools": .boolArray([true, false]),
                "convertible": .stringConvertible(12.5),
            ]
            span.addEvent(SpanEvent(name: "checkpoint", at: FixedInstant(nanosecondsSinceEpoch: 1_500), attributes: ["step": .int64(2)]))
            span.recordError(PaymentDeclined(), attributes: [:], at: FixedInstant(nanosecondsSinceEpoch: 1_700))
            span.setStatus(SpanStatus(code: .error, message: "PaymentDeclined: card declined"))
            let linked = tracer.startSpan("create orders", context: .topLevel, ofKind: .producer)
            span.addLink(SpanLink(context: linked.context, attributes: ["messaging.batch.message_count": .int64(2)]))
            linked.end()
            let child = tracer.startSpan("send next", context: span.context, ofKind: .producer, at: FixedInstant(nanosecondsSinceEpoch: 1_100))
            child.setStatus(SpanStatus(code: .ok, message: "ignored"))
            child.end(at: FixedInstant(nanosecondsSinceEpoch: 1_200))
            span.end(at: FixedInstant(nanosecondsSinceEpoch: 2_000))
        }
        await receiver.stop()

        let requests = try receiver.requests()
        #expect(requests.count == 1)
        #expect(requests.allSatisfy { $0.transport == transport })
        #expect(requests.first?.headers["x-api-key"] == "secret-1")
        let spans = try receiver.spans()
        #expect(spans.count == 3)
        #expect(tracer.exportedSpanCount == 3)
        #expect(tracer.failedExportCount == 0 && tracer.droppedSpanCount == 0)

        let process = try spans.named("process orders")
        #expect(process.kind == "SPAN_KIND_CONSUMER")
        #expect(process.traceID == "0af7651916cd43dd8448eb211c80319c")
        #expect(process.parentSpanID == "b7ad6b7169203331")
        #expect(process.spanID.count == 16 && process.spanID != "0000000000000000")
        #expect(process.traceState == "vendor=abc,other=1")
        #expect(process.flags == 0x301)  // sampled, HAS_IS_REMOTE, IS_REMOTE (its parent came from headers)
        #expect(process.start == 1_000 && process.end == 2_000)
        #expect(process.attributes == [
            "text": #"{"stringValue":"hello"}"#,
            "long": #"{"stringValue":"\#(longText)"}"#,
            "int": #"{"intValue":"-42"}"#,
            "int32": #"{"intValue":"7"}"#,
            "double": #"{"doubleValue":1.5}"#,
            "bool": #"{"boolValue":true}"#,
            "strings": #"{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}"#,
            "ints": #"{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"-2"}]}}"#,
            "int32s": #"{"arrayValue":{"values":[{"intValue":"3"}]}}"#,
            "doubles": #"{"arrayValue":{"values":[{"doubleValue":0.25}]}}"#,
            "bools": #"{"arrayValue":{"values":[{"boolValue":true},{"boolValue":false}]}}"#,
            "convertible": #"{"stringValue":"12.5"}"#,
        ])
        #expect(process.events == [
            ReceivedSpan.Event(name: "checkpoint", time: 1_500, attributes: ["step": #"{"intValue":"2"}"#]),
            ReceivedSpan.Event(
                name: "exception",
                time: 1_700,
                attributes: ["exception.type": #"{"stringValue":"PaymentDeclined"}"#, "exception.message": #"{"stringValue":"card declined"}"#]
            ),
        ])
        #expect(process.statusCode == "STATUS_CODE_ERROR")
        #expect(process.statusMessage == "PaymentDeclined: card declined")
        let create = try spans.named("create orders")
        #expect(process.links == [
            ReceivedSpan.Link(
                traceID: create.traceID,
                spanID: create.spanID,
                traceState: "",
                attributes: ["messaging.batch.message_count": #"{"intValue":"2"}"#],
                flags: 0x101
            )
        ])
        #expect(create.parentSpanID == "" && create.traceID != process.traceID && create.flags == 0x101)
        #expect(create.kind == "SPAN_KIND_PRODUCER")

        let child = try spans.named("send next")
        #expect(child.parentSpanID == process.spanID && child.traceID == process.traceID)
        #expect(child.traceState == "vendor=abc,other=1")
        #expect(child.flags == 0x101)  // its parent is local
        #expect(child.statusCode == "STATUS_CODE_OK" && child.statusMessage == nil)
        #expect(child.start == 1_100 && child.end == 1_200)

        for span in spans {
            #expect(span.resource == [
                "service.name": #"{"stringValue":"round-trip"}"#,
                "deployment.environment.name": #"{"stringValue":"test"}"#,
                "telemetry.sdk.name": #"{"stringValue":"CourierOTLP"}"#,
                "telemetry.sdk.language": #"{"stringValue":"swift"}"#,
                "telemetry.sdk.version": #"{"stringValue":"1.0.0"}"#,
            ])
            #expect(span.scopeName == "CourierOTLP" && span.scopeVersion == "1.0.0")
        }
    }

    @Test("a collector's partial success is decoded and counted", arguments: ["http", "grpc"])
    func partialSuccess(_ transport: String) async throws {
        let receiver = try await OTLPReceiver(reject: 1)
        let tracer = OTLPTracer(configuration: .test(transport == "http" ? .httpProtobuf(endpoint: receiver.httpEndpoint) : .grpc(endpoint: receiver.grpcEndpoint)))
        try await withRunningService(tracer) {
            for index in 0..<3 {
                tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
            }
        }
        await receiver.stop()
        #expect(try receiver.spans().count == 3)
        #expect(tracer.rejectedSpanCount == 1)
        #expect(tracer.exportedSpanCount == 2)
        #expect(tracer.failedExportCount == 0)
    }

    @Test("a batch larger than maxExportBatchSize goes out in several requests, every span once")
    func batching() async throws {
        let receiver = try await OTLPReceiver()
        var configuration = OTLPTracerConfiguration.test(.httpProtobuf(endpoint: receiver.httpEndpoint))
        configuration.maxExportBatchSize = 10
        configuration.maxQueueSize = 100
        let tracer = OTLPTracer(configuration: configuration)
        try await withRunningService(tracer) {
            for index in 0..<25 {
                tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
            }
        }
        await receiver.stop()
        let requests = try receiver.requests()
        #expect(requests.allSatisfy { $0.spans.count <= 10 })
        #expect(requests.count >= 3)
        #expect(Set(requests.flatMap(\.spans).map(\.name)) == Set((0..<25).map { "span \($0)" }))
        #expect(requests.flatMap(\.spans).count == 25)
        #expect(tracer.exportedSpanCount == 25)
    }

    @Test("flush() returns once every span ended before it was exported, in as many batches as that takes")
    func flushWaitsForTheExport() async throws {
        let receiver = try await OTLPReceiver()
        var configuration = OTLPTracerConfiguration.test(.httpProtobuf(endpoint: receiver.httpEndpoint))
        configuration.maxExportBatchSize = 5
        configuration.maxQueueSize = 100
        // Nothing but the flush sends the spans before the shutdown.
        configuration.scheduleDelay = .seconds(3600)
        let tracer = OTLPTracer(configuration: configuration)
        try await withRunningService(tracer) {
            for index in 0..<12 {
                tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
            }
            await tracer.flush()
            #expect(tracer.exportedSpanCount == 12)
            #expect(tracer.queuedSpanCount == 0)
            // Nothing queued: a flush has nothing to wait for.
            await tracer.flush()
            #expect(tracer.exportedSpanCount == 12)
        }
        await receiver.stop()
        #expect(try receiver.requests().flatMap(\.spans).count == 12)
    }
}
