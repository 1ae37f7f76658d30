import Courier
import CourierMemory
import CourierOTLP
import Logging
import Testing
import Tracing

/// Sampling decisions and their propagation, W3C inject/extract, and trace ids in log metadata.
@Suite("CourierOTLP: sampling, propagation, log metadata")
struct OTLPSamplingTests {
    static func tracer(_ sampler: OTLPSampler) -> OTLPTracer {
        var configuration = OTLPTracerConfiguration.test(.none)
        configuration.sampler = sampler
        return OTLPTracer(configuration: configuration)
    }

    static func traceparent(_ tracer: OTLPTracer, _ context: ServiceContext) -> String? {
        var headers: [String: String] = [:]
        tracer.inject(context, into: &headers, using: DictionaryInjector())
        return headers["traceparent"]
    }

    @Test("traceIDRatio decides from the trace id's last 8 bytes: below ratio × 2^64 is sampled")
    func ratioDecision() throws {
        let tracer = Self.tracer(.traceIDRatio(0.25))
        var sampled = 0
        for _ in 0..<2000 {
            let span = tracer.startSpan("root", context: .topLevel)
            let context = try #require(span.context.otlpSpanContext)
            let expected = context.traceID.low < UInt64(0.25 * 0x1p64)
            #expect(span.isRecording == expected)
            #expect(context.isSampled == expected)
            if expected { sampled += 1 }
            span.end()
        }
        // Both outcomes happen (ids are random): the decision is not constant.
        #expect(sampled > 0 && sampled < 2000)
        #expect(!Self.tracer(.traceIDRatio(0)).startSpan("root", context: .topLevel).isRecording)
        #expect(Self.tracer(.traceIDRatio(1)).startSpan("root", context: .topLevel).isRecording)
    }

    @Test("parent-based: a sampled-out root makes sampled-out children; flags 00 are propagated; never exported")
    func sampledOutParent() async throws {
        let tracer = Self.tracer(.parentBased(root: .alwaysOff))
        let root = tracer.startSpan("root", context: .topLevel)
        #expect(!root.isRecording)
        root.attributes["ignored"] = "x"
        #expect(root.attributes.isEmpty)
        let rootContext = try #require(root.context.otlpSpanContext)
        #expect(!rootContext.isSampled)
        let header = try #require(Self.traceparent(tracer, root.context))
        #expect(header == "00-\(rootContext.traceID)-\(rootContext.spanIDHex)-00")

        let child = tracer.startSpan("child", context: root.context)
        #expect(!child.isRecording)
        let childContext = try #require(child.context.otlpSpanContext)
        #expect(childContext.traceID == rootContext.traceID)
        #expect(childContext.parentSpanID == rootContext.spanID)
        #expect(childContext.spanID != rootContext.spanID)

        // A remote sampled-out parent, as it arrives in headers.
        var remote = ServiceContext.topLevel
        tracer.extract(["traceparent": header], into: &remote, using: DictionaryExtractor())
        let fromRemote = tracer.startSpan("process", context: remote)
        #expect(!fromRemote.isRecording)
        #expect(fromRemote.context.otlpSpanContext?.traceID == rootContext.traceID)
        child.end()
        root.end()
        fromRemote.end()
        #expect(tracer.queuedSpanCount == 0)

        // Even a root sampler that samples everything follows a parent that was not sampled…
        let parentBased = Self.tracer(.parentBased(root: .alwaysOn))
        #expect(!parentBased.startSpan("process", context: remote).isRecording)
        // …and one that samples nothing follows a sampled parent.
        var sampledRemote = ServiceContext.topLevel
        parentBased.extract(["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"], into: &sampledRemote, using: DictionaryExtractor())
        #expect(Self.tracer(.parentBased(root: .alwaysOff)).startSpan("process", context: sampledRemote).isRecording)
        #expect(Self.tracer(.parentBased(root: .traceIDRatio(0))).startSpan("process", context: sampledRemote).isRecording)
    }

    @Test("through a broker: a sampled-out publish propagates flags 00 and its process span records nothing")
    func sampledOutThroughBroker() async throws {
        let tracer = Self.tracer(.parentBased(root: .alwaysOff))
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
        let seen = Inbox<(String?, Bool, OTLPTraceID?)>()
        broker.subscriber("orders") { (_: String, context: MessageContext) in
            seen.put((context.message.headers["traceparent"], context.span?.isRecording ?? true, ServiceContext.current?.otlpSpanContext?.traceID))
        }
        try await withRunningService(tracer) {
            try await withRunningApp([broker]) {
                try await broker.publish("x", to: "orders")
                try await seen.wait(count: 1)
            }
        }
        let (header, recording, traceID) = try #require(seen.values.first)
        let traceparent = try #require(header)
        #expect(traceparent.hasSuffix("-00"))
        #expect(!recording)
        #expect(traceparent.split(separator: "-")[1] == "\(try #require(traceID))")
        #expect(tracer.exportedSpanCount == 0 && tracer.queuedSpanCount == 0 && tracer.droppedSpanCount == 0)
    }

    @Test("W3C: inject writes traceparent and tracestate; extract rejects malformed headers")
    func w3c() throws {
        let tracer = Self.tracer(.alwaysOn)
        var context = ServiceContext.topLevel
        tracer.extract(
            ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "congo=t61rcWkgMzE"],
            into: &context,
            using: DictionaryExtractor()
        )
        let remote = try #require(context.otlpSpanContext)
        #expect(remote.isRemote && remote.isSampled && remote.traceState == "congo=t61rcWkgMzE")
        let span = tracer.startSpan("child", context: context)
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryInjector())
        let spanContext = try #require(span.context.otlpSpanContext)
        #expect(headers == [
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-\(spanContext.spanIDHex)-01",
            "tracestate": "congo=t61rcWkgMzE",
        ])
        for malformed in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  // no flags
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",  // zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  // zero span id
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version ff
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  // uppercase
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  // version 00 with more
        ] {
            var extracted = ServiceContext.topLevel
            tracer.extract(["traceparent": malformed], into: &extracted, using: DictionaryExtractor())
            #expect(extracted.otlpSpanContext == nil, "accepted \(malformed)")
        }
        // A later version may append fields.
        var future = ServiceContext.topLevel
        tracer.extract(["traceparent": "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more"], into: &future, using: DictionaryExtractor())
        #expect(future.otlpSpanContext?.spanID == 0xb7ad_6b71_6920_3331)
    }

    @Test("the logging metadata provider puts trace_id, span_id and trace_flags of the current span in log records")
    func loggingMetadata() throws {
        let tracer = Self.tracer(.alwaysOn)
        let logs = CapturedLogs()
        let logger = logs.logger(metadataProvider: OTLPTracer.loggingMetadataProvider)
        let span = tracer.startSpan("process orders", context: .topLevel)
        let context = try #require(span.context.otlpSpanContext)
        ServiceContext.withValue(span.context) {
            logger.info("inside")
        }
        logger.info("outside")
        span.end()
        let inside = try #require(logs.entry("inside"))
        #expect(inside.metadata["trace_id"] == context.traceID.description)
        #expect(inside.metadata["span_id"] == context.spanIDHex)
        #expect(inside.metadata["trace_flags"] == "1")
        #expect(context.traceID.description.count == 32 && context.spanIDHex.count == 16)
        let outside = try #require(logs.entry("outside"))
        #expect(outside.metadata["trace_id"] == nil && outside.metadata["span_id"] == nil)
    }

    @Test("ids are unique and never zero")
    func ids() throws {
        let tracer = Self.tracer(.alwaysOn)
        var traceIDs = Set<OTLPTraceID>()
        var spanIDs = Set<UInt64>()
        for _ in 0..<10_000 {
            let context = try #require(tracer.startSpan("x", context: .topLevel).context.otlpSpanContext)
            #expect(!context.traceID.isZero && context.spanID != 0)
            traceIDs.insert(context.traceID)
            spanIDs.insert(context.spanID)
        }
        #expect(traceIDs.count == 10_000 && spanIDs.count == 10_000)
    }
}
