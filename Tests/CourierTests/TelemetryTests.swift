import Courier
import CourierMemory
import InMemoryTracing
import MetricsTestKit
import NIOCore
import Testing
import Tracing

@Suite("Telemetry (OpenTelemetry conventions)")
struct TelemetryTests {
    @Test("publish → process: a producer span, a consumer span parented on it, semantic-convention attributes")
    func publishAndProcess() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let received = Inbox<String>()
        broker.subscriber("orders") { (message: String, _) in received.put(message) }

        try await withRunningApp([broker]) {
            try await broker.publish("hello", to: "orders", correlationID: "c-1")
            try await received.wait(count: 1)
        }

        let spans = tracer.finishedSpans
        #expect(spans.count == 2)
        let send = try spans.named("send orders")
        let process = try spans.named("process orders")
        #expect(send.kind == .producer)
        #expect(process.kind == .consumer)
        #expect(send.parentSpanID == nil)
        #expect(process.parentSpanID == send.spanID)
        #expect(process.traceID == send.traceID)
        for span in [send, process] {
            #expect(span.attribute("messaging.system") == .string("memory"))
            #expect(span.attribute("messaging.destination.name") == .string("orders"))
            #expect(span.attribute("messaging.message.conversation_id") == .string("c-1"))
            #expect(span.attribute("messaging.message.body.size") == .int64(5))
            #expect(span.status == nil)
        }
        #expect(send.attribute("messaging.operation.type") == .string("send"))
        #expect(send.attribute("messaging.operation.name") == .string("send"))
        #expect(process.attribute("messaging.operation.type") == .string("process"))
        #expect(process.attribute("messaging.operation.name") == .string("process"))
        #expect(send.attribute("messaging.message.id") != nil)
        #expect(send.attribute("messaging.message.id") == process.attribute("messaging.message.id"))
    }

    @Test("the handler runs with its process span current and readable from the context")
    func spanInContext() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let seen = Inbox<Bool>()
        broker.subscriber("orders") { (_: String, context: MessageContext) in
            let current = ServiceContext.current?.inMemorySpanContext
            seen.put(current != nil && current == context.span?.context.inMemorySpanContext)
        }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "orders")
            try await seen.wait(count: 1)
        }
        #expect(seen.values == [true])
    }

    @Test("first → second → third by return values is one causal tree")
    func chain() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let done = Inbox<String>()
        broker.subscriber("first").publisher("second").handle { (message: String, _) in message + "1" }
        broker.subscriber("second").publisher("third").handle { (message: String, _) in message + "2" }
        broker.subscriber("third") { (message: String, _) in done.put(message) }

        try await withRunningApp([broker]) {
            try await broker.publish("m", to: "first")
            try await done.wait(count: 1)
        }

        #expect(done.values == ["m12"])
        let spans = tracer.finishedSpans
        #expect(spans.count == 6)
        let sendFirst = try spans.named("send first")
        let processFirst = try spans.named("process first")
        let sendSecond = try spans.named("send second")
        let processSecond = try spans.named("process second")
        let sendThird = try spans.named("send third")
        let processThird = try spans.named("process third")
        #expect(sendFirst.parentSpanID == nil)
        #expect(processFirst.parentSpanID == sendFirst.spanID)
        #expect(sendSecond.parentSpanID == processFirst.spanID)
        #expect(processSecond.parentSpanID == sendSecond.spanID)
        #expect(sendThird.parentSpanID == processSecond.spanID)
        #expect(processThird.parentSpanID == sendThird.spanID)
        #expect(Set(spans.map(\.traceID)).count == 1)
        // The return value keeps the incoming correlation id.
        #expect(sendThird.attribute("messaging.message.conversation_id") == sendFirst.attribute("messaging.message.conversation_id"))
    }

    @Test("a message without trace context starts a new trace and is processed")
    func withoutTraceContext() async throws {
        let tracer = InMemoryTracer()
        let transport = MemoryTransport()
        let producer = Broker(transport: transport)  // a service without telemetry
        let consumer = Broker(transport: transport, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let received = Inbox<String>()
        consumer.subscriber("plain") { (message: String, _) in received.put(message) }

        try await withRunningApp([consumer]) {
            try await producer.publish("no context", to: "plain")
            try await received.wait(count: 1)
        }

        let process = try tracer.finishedSpans.named("process plain")
        #expect(process.parentSpanID == nil)
        #expect(process.links.isEmpty)
        #expect(tracer.finishedSpans.count == 1)
    }

    @Test("a malformed traceparent is ignored with a debug log; the message is processed in a new trace")
    func malformedTraceparent() async throws {
        let tracer = InMemoryTracer()
        let logs = CapturedLogs()
        let transport = MemoryTransport()
        let producer = Broker(transport: transport)
        let consumer = Broker(transport: transport, middlewares: [TelemetryMiddleware(tracer: tracer)], logger: logs.logger())
        let received = Inbox<String>()
        consumer.subscriber("bad") { (message: String, _) in received.put(message) }

        try await withRunningApp([consumer]) {
            try await producer.publish("one", to: "bad", headers: ["traceparent": "00-not-a-trace-01", "baggage": "ok=1,=broken"])
            try await received.wait(count: 1)
        }

        #expect(received.values == ["one"])
        let process = try tracer.finishedSpans.named("process bad")
        #expect(process.parentSpanID == nil)
        #expect(logs.contains(.debug, "malformed traceparent"))
        #expect(logs.contains(.debug, "malformed baggage"))
    }

    @Test("a throwing handler: error recorded, error status, error.type; the message is rejected; the subscriber keeps running")
    func handlerError() async throws {
        struct PaymentDeclined: Error {}
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let processed = Inbox<String>()
        broker.subscriber("payments") { (message: String, _) in
            if message == "fail" { throw PaymentDeclined() }
            processed.put(message)
        }

        try await withRunningApp([broker]) {
            try await broker.publish("fail", to: "payments")
            try await broker.publish("ok", to: "payments")
            try await processed.wait(count: 1)
        }

        #expect(processed.values == ["ok"])
        let processSpans = tracer.finishedSpans.filter { $0.operationName == "process payments" }
        #expect(processSpans.count == 2)
        let failed = try #require(processSpans.first { $0.status != nil })
        #expect(failed.status?.code == .error)
        #expect(failed.attribute("error.type") == .string("PaymentDeclined"))
        #expect(failed.errors.count == 1)
        #expect(processSpans.filter { $0.status == nil }.count == 1)
        let statistics = broker.transport.statistics(for: "payments")
        #expect(statistics.rejected == 1)
        #expect(statistics.acked == 1)
    }

    @Test("a body that does not decode is a handled error: span error, rejected, subscriber keeps running")
    func undecodableBody() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let orders = Inbox<Order>()
        broker.subscriber("orders") { (order: Order, _) in orders.put(order) }

        try await withRunningApp([broker]) {
            try await broker.publish("this is not JSON", to: "orders")
            try await broker.publish(Order(id: 7, item: "tea"), to: "orders")
            try await orders.wait(count: 1)
        }

        #expect(orders.values == [Order(id: 7, item: "tea")])
        let failed = try #require(tracer.finishedSpans.first { $0.operationName == "process orders" && $0.status != nil })
        #expect(failed.status?.code == .error)
        #expect(failed.attribute("error.type") == .string("MessageDecodingError"))
        #expect(broker.transport.statistics(for: "orders").rejected == 1)
    }

    @Test("baggage travels with the message, through return values, and can be narrowed for a publish")
    func baggage() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let seen = Inbox<[String: String]>()
        let headers = Inbox<String>()
        broker.subscriber("first").publisher("second").handle { (message: String, context: MessageContext) in
            seen.put(context.baggage.dictionary)
            try await Baggage.withValue(context.baggage.setting("step", to: "first")) {
                try await context.publish(message, to: "side")
            }
            return message
        }
        broker.subscriber("second") { (_: String, context: MessageContext) in
            seen.put(context.baggage.dictionary)
        }
        broker.subscriber("side") { (_: String, context: MessageContext) in
            headers.put(context.message.headers["baggage"] ?? "")
            seen.put(context.baggage.dictionary)
        }

        try await withRunningApp([broker]) {
            try await Baggage.withValue(["tenant": "acme", "note": "a b,c"]) {
                try await broker.publish("m", to: "first")
            }
            _ = try await seen.wait(count: 3)
        }

        let values = seen.values
        #expect(values.filter { $0 == ["tenant": "acme", "note": "a b,c"] }.count == 2)
        #expect(values.contains(["tenant": "acme", "note": "a b,c", "step": "first"]))
        #expect(headers.values == ["note=a%20b%2Cc,step=first,tenant=acme"])
    }

    @Test("W3C baggage parsing accepts Python's encoding and skips malformed members")
    func baggageParsing() {
        let parsed = Baggage.parse(header: "k=a+b%2Cc, n=1,u=%C3%BC;prop=1,broken,=x")
        #expect(parsed.baggage.dictionary == ["k": "a b,c", "n": "1", "u": "ü"])
        #expect(parsed.malformedMembers == 2)
        #expect(Baggage.parse(header: Baggage(["key": "v 1+2"]).headerValue).baggage == ["key": "v 1+2"])
    }

    @Test("batch publish: a create span per message, a send span linking them; batch consume: one process span linking every message")
    func batchLinks() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let batches = Inbox<[String]>()
        broker.subscriber("batch", batch: BatchOptions(maxMessages: 10)).handle { (messages: [String], _) in
            batches.put(messages)
        }

        // Published before the subscriber starts, so the three are ready together.
        try await broker.publishBatch(["a", "b", "c"], to: "batch")
        _ = try await withRunningApp([broker]) {
            try await batches.wait(count: 1)
        }

        #expect(batches.values == [["a", "b", "c"]])
        let spans = tracer.finishedSpans
        let creates = spans.filter { $0.operationName == "create batch" }
        #expect(creates.count == 3)
        #expect(creates.allSatisfy { $0.kind == .producer && $0.attribute("messaging.operation.type") == .string("create") })
        let send = try spans.named("send batch")
        #expect(send.kind == .client)
        #expect(send.attribute("messaging.batch.message_count") == .int64(3))
        let createIDs = Set(creates.map(\.spanID))
        #expect(Set(send.links.compactMap { $0.context.inMemorySpanContext?.spanID }) == createIDs)

        let process = try spans.named("process batch")
        #expect(process.parentSpanID == nil)
        #expect(process.attribute("messaging.batch.message_count") == .int64(3))
        #expect(Set(process.links.compactMap { $0.context.inMemorySpanContext?.spanID }) == createIDs)
    }

    @Test("request/reply: the reply is traced and connected to the request's trace")
    func requestReply() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        broker.subscriber("double") { (number: Int, _) in number * 2 }

        let reply = try await withRunningApp([broker]) {
            try await broker.request(21, to: "double", as: Int.self, timeout: .seconds(5))
        }

        #expect(reply == 42)
        let spans = tracer.finishedSpans
        let send = try spans.named("send double")
        let process = try spans.named("process double")
        let sendReply = try spans.named("send")
        let processReply = try spans.named("process")
        #expect(process.parentSpanID == send.spanID)
        #expect(sendReply.parentSpanID == process.spanID)
        #expect(sendReply.attribute("messaging.destination.temporary") == .bool(true))
        #expect(processReply.parentSpanID == sendReply.spanID)
        #expect(Set(spans.map(\.traceID)).count == 1)
    }

    @Test("a request nobody answers times out with a clear error")
    func requestTimeout() async throws {
        let broker = MemoryBroker()
        await #expect {
            try await broker.request("anyone?", to: "nobody", timeout: .milliseconds(200))
        } throws: { error in
            let error = error as? CourierError
            return error?.code == .requestTimedOut && error?.message == "no reply from 'nobody' within 0.2 seconds"
        }
    }

    @Test("metrics: durations and counters with the spans' low-cardinality attributes")
    func metrics() async throws {
        struct Boom: Error {}
        let metrics = TestMetrics()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: InMemoryTracer(), metricsFactory: metrics)])
        let done = Inbox<String>()
        broker.subscriber("jobs") { (message: String, _) in
            done.put(message)
            if message == "bad" { throw Boom() }
        }

        try await withRunningApp([broker]) {
            try await broker.publish("good", to: "jobs")
            try await broker.publish("bad", to: "jobs")
            try await done.wait(count: 2)
        }

        let base = [("messaging.system", "memory")]
        let processDims = base + [("messaging.operation.name", "process"), ("messaging.destination.name", "jobs")]
        #expect(metrics.counterTotal(label: "messaging.client.consumed.messages", dimensions: processDims) == 2)
        let sendDims = base + [("messaging.operation.name", "send"), ("messaging.destination.name", "jobs")]
        #expect(metrics.counterTotal(label: "messaging.client.sent.messages", dimensions: sendDims) == 2)

        let ok = try metrics.expectTimer("messaging.process.duration", processDims)
        #expect(ok.values.count == 1)
        #expect(ok.displayUnit == .seconds)
        let failed = try metrics.expectTimer("messaging.process.duration", processDims + [("error.type", "Boom")])
        #expect(failed.values.count == 1)
        let send = try metrics.expectTimer("messaging.client.operation.duration", sendDims + [("messaging.operation.type", "send")])
        #expect(send.values.count == 2)
        #expect(send.values.allSatisfy { $0 > 0 })
    }

    @Test("process span as a link instead of a child, when configured")
    func linkedProcessSpan() async throws {
        let tracer = InMemoryTracer()
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(processSpanParent: .link, tracer: tracer)])
        let done = Inbox<Void>()
        broker.subscriber("linked") { (_: String, _) in done.put(()) }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "linked")
            try await done.wait(count: 1)
        }
        let send = try tracer.finishedSpans.named("send linked")
        let process = try tracer.finishedSpans.named("process linked")
        #expect(process.parentSpanID == nil)
        #expect(process.links.map { $0.context.inMemorySpanContext?.spanID } == [send.spanID])
    }
}
