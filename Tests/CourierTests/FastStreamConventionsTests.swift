import Courier
import CourierMemory
import InMemoryTracing
import MetricsTestKit
import Testing
import Tracing

@Suite("Telemetry (FastStream conventions)")
struct FastStreamConventionsTests {
    @Test("the chain has FastStream 0.7's span names, parents and attributes")
    func chain() async throws {
        let tracer = InMemoryTracer()
        let metrics = TestMetrics()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer, metricsFactory: metrics)])
        let done = Inbox<String>()
        broker.subscriber("first").publisher("second").handle { (message: String, _) in message }
        broker.subscriber("second") { (message: String, _) in done.put(message) }

        try await withRunningApp([broker]) {
            try await broker.publish("message", to: "first", correlationID: "cid")
            try await done.wait(count: 1)
        }

        let spans = tracer.finishedSpans
        #expect(spans.count == 5)
        let create = try spans.named("first create")
        let publishFirst = try spans.named("first publish")
        let processFirst = try spans.named("first process")
        let publishSecond = try spans.named("second publish")
        let processSecond = try spans.named("second process")
        #expect(create.kind == .producer && publishFirst.kind == .producer && publishSecond.kind == .producer)
        #expect(processFirst.kind == .consumer && processSecond.kind == .consumer)
        #expect(create.parentSpanID == nil)
        #expect(publishFirst.parentSpanID == create.spanID)
        #expect(processFirst.parentSpanID == create.spanID)
        #expect(publishSecond.parentSpanID == processFirst.spanID)
        // FastStream re-sends the origin context with a return value.
        #expect(processSecond.parentSpanID == create.spanID)

        #expect(create.attributes == [
            "messaging.system": "memory",
            "messaging.destination.name": "first",
            "messaging.message.conversation_id": "cid",
        ])
        #expect(publishFirst.attribute("messaging.operation") == .string("publish"))
        #expect(processFirst.attribute("messaging.operation") == .string("process"))
        #expect(processFirst.attribute("messaging.destination_publish.name") == .string("first"))
        #expect(processFirst.attribute("messaging.message.payload_size_bytes") == .int64(7))
        #expect(processFirst.attribute("messaging.message.conversation_id") == .string("cid"))
        #expect(processFirst.attribute("messaging.message.id") != nil)
        #expect(processFirst.attribute("messaging.operation.type") == nil)

        let publishDims = [("messaging.system", "memory"), ("messaging.destination.name", "first")]
        #expect(try metrics.expectTimer("messaging.publish.duration", publishDims).values.count == 1)
        #expect(metrics.counterTotal(label: "messaging.publish.messages", dimensions: publishDims) == 1)
        let processDims = [("messaging.system", "memory"), ("messaging.destination_publish.name", "second")]
        #expect(try metrics.expectTimer("messaging.process.duration", processDims).values.count == 1)
        #expect(metrics.counterTotal(label: "messaging.process.messages", dimensions: processDims) == 1)
    }

    @Test("no trace context: a consumer create span starts the trace, the process span is its child")
    func withoutTraceContext() async throws {
        let tracer = InMemoryTracer()
        let transport = MemoryTransport()
        let producer = Broker(transport: transport)
        let consumer = Broker(transport: transport, middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer)])
        let done = Inbox<Void>()
        consumer.subscriber("plain") { (_: String, _) in done.put(()) }
        try await withRunningApp([consumer]) {
            try await producer.publish("x", to: "plain")
            try await done.wait(count: 1)
        }
        let create = try tracer.finishedSpans.named("plain create")
        let process = try tracer.finishedSpans.named("plain process")
        #expect(create.kind == .consumer)
        #expect(create.parentSpanID == nil)
        #expect(process.parentSpanID == create.spanID)
    }

    @Test("an explicit publish from a handler makes a new create span under the process span")
    func explicitPublishInHandler() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer)])
        let done = Inbox<Void>()
        broker.subscriber("in") { (message: String, context: MessageContext) in
            try await context.publish(message, to: "sink")
        }
        broker.subscriber("sink") { (_: String, _) in done.put(()) }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "in")
            try await done.wait(count: 1)
        }
        let processIn = try tracer.finishedSpans.named("in process")
        let createSink = try tracer.finishedSpans.named("sink create")
        let processSink = try tracer.finishedSpans.named("sink process")
        #expect(createSink.parentSpanID == processIn.spanID)
        #expect(processSink.parentSpanID == createSink.spanID)
    }

    @Test("errors: error status with FastStream's message, error.type on the metric only")
    func errors() async throws {
        struct ValueError: Error, CustomStringConvertible { var description: String { "boom" } }
        let tracer = InMemoryTracer()
        let metrics = TestMetrics()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(conventions: .fastStream, tracer: tracer, metricsFactory: metrics)])
        let done = Inbox<Void>()
        broker.subscriber("q") { (_: String, _) in
            done.put(())
            throw ValueError()
        }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "q")
            try await done.wait(count: 1)
        }
        let process = try tracer.finishedSpans.named("q process")
        #expect(process.status == SpanStatus(code: .error, message: "ValueError: boom"))
        #expect(process.attribute("error.type") == nil)
        let dims = [("messaging.system", "memory"), ("messaging.destination_publish.name", "q"), ("error.type", "ValueError")]
        #expect(try metrics.expectTimer("messaging.process.duration", dims).values.count == 1)
    }
}
