import Courier
import CoreMetrics
import InMemoryTracing
import Logging
import NIOCore
import Synchronization
import Tracing

/// The consume side of `TelemetryMiddleware`: one delivery (a message or a batch) whose headers
/// the input spells out, through `consume` with an `InMemoryTracer`, both conventions, parent or
/// link.
///
/// Invariants, besides not crashing: the handler runs once, without an error; it sees exactly the
/// baggage `Baggage.parse` reads from the messages (later ones winning); the tracer is shown
/// `traceparent` and `tracestate` only when the `traceparent` is absent or well-formed; a single
/// message with creation ids is processed under (or linked to) them; no span stays open.
enum PropagationFuzz {
    /// The headers the consume path reads, and one it does not.
    static let names = [
        MessageHeaderName.traceparent, MessageHeaderName.tracestate, MessageHeaderName.baggage,
        InMemoryTracer.traceIDKey, InMemoryTracer.spanIDKey, MessageHeaderName.correlationID, "x-other",
    ]
    static let logger = Logger(label: "courier-fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    /// One delivery as the input describes it: an options byte (conventions, parent or link, batch
    /// and its size), then per message a header count and `(name index, length, bytes)` triples.
    struct Case {
        var conventions: TelemetryConventions
        var processSpanParent: ProcessSpanParent
        var isBatch: Bool
        var messages: [MessageHeaders]

        init(_ input: [UInt8]) {
            var reader = FuzzBytes(input)
            let options = reader.byte()
            conventions = options & 1 == 0 ? .openTelemetry : .fastStream
            processSpanParent = options & 2 == 0 ? .creationContext : .link
            isBatch = options & 4 != 0
            let count = isBatch ? 1 + Int(options >> 3) % 3 : 1
            messages = (0..<count).map { _ in
                var headers = MessageHeaders()
                for _ in 0..<reader.int(below: 8) {
                    let name = PropagationFuzz.names[reader.int(below: PropagationFuzz.names.count)]
                    headers[name] = String(decoding: reader.chunk(below: 1024), as: UTF8.self)
                }
                return headers
            }
        }

        /// The input that describes `messages` (each of at most 7 headers of the known names).
        static func encode(options: UInt8, _ messages: [[(name: String, value: String)]]) -> [UInt8] {
            var bytes = [options]
            for headers in messages {
                bytes.append(UInt8(headers.count))
                for (name, value) in headers {
                    bytes.append(UInt8(PropagationFuzz.names.firstIndex(of: name)!))
                    let length = min(value.utf8.count, 1023)
                    bytes += [UInt8(length >> 8), UInt8(length & 0xFF)] + value.utf8.prefix(length)
                }
            }
            return bytes
        }
    }

    static func run(_ input: [UInt8], _ check: FuzzCheck) async throws(FuzzFailure) {
        let delivery = Case(input)
        let tracer = ObservingTracer()
        let middleware = TelemetryMiddleware(
            conventions: delivery.conventions,
            processSpanParent: delivery.processSpanParent,
            tracer: tracer,
            metricsFactory: NOOPMetricsHandler.instance
        )
        let messages = delivery.messages.map { headers in
            IncomingMessage(body: ByteBuffer(), headers: headers, destination: "fuzz", correlationID: headers[MessageHeaderName.correlationID])
        }
        let context = MessageContext(
            delivery: InboundDelivery(messages: messages, settlement: .none),
            isBatch: delivery.isBatch,
            destination: SubscribedDestination(name: "fuzz"),
            broker: BrokerDescription(messagingSystem: "fuzz"),
            logger: logger,
            dispatch: { _ in [] }
        )
        let handled = Handled()
        do {
            try await middleware.consume(context) { context in
                handled.baggages.withLock { $0.append(context.baggage) }
            }
        } catch {
            throw check.failure("consume threw \(error)")
        }

        let baggages = handled.baggages.withLock { $0 }
        try check.require(baggages.count == 1, "the handler ran \(baggages.count) times")
        let expected = delivery.messages.reduce(Baggage()) { merged, headers in
            merged.merging(headers[MessageHeaderName.baggage].map { Baggage.parse(header: $0).baggage } ?? Baggage())
        }
        try check.require(baggages[0] == expected, "the handler saw baggage \(baggages[0].dictionary), the headers hold \(expected.dictionary)")

        let seen = tracer.observations.seen.withLock { $0 }
        try check.require(seen.count == delivery.messages.count, "\(seen.count) extractions for \(delivery.messages.count) messages")
        for (headers, shown) in zip(delivery.messages, seen) {
            let traceparent = headers[MessageHeaderName.traceparent]
            let visible = traceparent.map(TraceParent.isWellFormed) ?? true
            try check.require(
                shown.traceparent == (visible ? traceparent : nil) && shown.tracestate == (visible ? headers[MessageHeaderName.tracestate] : nil),
                "traceparent '\(traceparent ?? "-")' (well-formed: \(visible)) showed the tracer \(shown)"
            )
        }

        try check.require(tracer.inner.activeSpans.isEmpty, "\(tracer.inner.activeSpans.count) spans were left open")
        let spans = tracer.inner.popFinishedSpans()
        let processName = delivery.conventions == .openTelemetry ? "process fuzz" : "fuzz process"
        guard let process = spans.first(where: { $0.operationName == processName }) else {
            throw check.failure("no '\(processName)' span among \(spans.map(\.operationName))")
        }
        // A single message whose creation ids arrived: the process span hangs under them (FastStream:
        // unless baggage marks the message as sent in a batch) or, asked for, links to them.
        let headers = delivery.messages[0]
        guard !delivery.isBatch, let trace = headers[InMemoryTracer.traceIDKey], let span = headers[InMemoryTracer.spanIDKey] else { return }
        switch (delivery.conventions, delivery.processSpanParent) {
        case (.openTelemetry, .link):
            try check.require(
                process.links.count == 1 && process.links[0].context.inMemorySpanContext?.spanID == span,
                "the process span links to \(process.links.map(\.context.inMemorySpanContext)), not to span \(span)"
            )
        case (.fastStream, _) where expected["with_batch"] != nil:
            break
        default:
            try check.require(
                process.traceID == trace && process.parentSpanID == span,
                "the process span is in \(process.traceID) under \(process.parentSpanID ?? "-"), not in \(trace) under \(span)"
            )
        }
    }

    /// What the handler saw, handed out of its `@Sendable` closure.
    final class Handled: Sendable {
        let baggages = Mutex<[Baggage]>([])
    }

    // MARK: - Generating deliveries

    /// Headers as producers write them (Courier, FastStream, the in-memory tracer), some of them
    /// spoiled.
    static func randomHeaders(_ random: inout FuzzRandom) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if !random.oneIn(4) {
            var traceparent = TraceParentFuzz.validTraceparent(&random)
            if random.oneIn(4) { traceparent = String(decoding: TraceParentFuzz.generate(&random), as: UTF8.self) }
            headers.append((MessageHeaderName.traceparent, traceparent))
        }
        if random.oneIn(2) { headers.append((MessageHeaderName.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")) }
        if !random.oneIn(3) {
            var baggage = BaggageFuzz.randomBaggage(&random)
            if random.oneIn(5) { baggage = baggage.setting("with_batch", to: "1") }
            headers.append((MessageHeaderName.baggage, random.oneIn(5) ? baggage.headerValue + ",broken" : baggage.headerValue))
        }
        if random.oneIn(2) {
            headers.append((InMemoryTracer.traceIDKey, "trace-\(Int.random(in: 1...99, using: &random))"))
            headers.append((InMemoryTracer.spanIDKey, "span-\(Int.random(in: 1...99, using: &random))"))
        }
        if random.oneIn(2) { headers.append((MessageHeaderName.correlationID, "c-\(Int.random(in: 1...9, using: &random))")) }
        return headers
    }

    static func generate(_ random: inout FuzzRandom) -> [UInt8] {
        let options = UInt8.random(in: 0...255, using: &random)
        let count = options & 4 != 0 ? 1 + Int(options >> 3) % 3 : 1
        return Case.encode(options: options, (0..<count).map { _ in randomHeaders(&random) })
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let fastStream: [(name: String, value: String)] = [
            (MessageHeaderName.traceparent, "00-401e1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b-03"),
            (MessageHeaderName.baggage, "foo=bar"), (MessageHeaderName.correlationID, "c-1"),
        ]
        return [Case.encode(options: 0, [fastStream]), Case.encode(options: 1, [fastStream])] + (0..<24).map { _ in generate(&random) }
    }
}

/// An `InMemoryTracer` that also notes which W3C fields each extraction was shown: the
/// middleware hides a malformed `traceparent` (and its `tracestate`) from the tracer.
struct ObservingTracer: Tracer {
    typealias Span = InMemorySpan

    final class Observations: Sendable {
        let seen = Mutex<[(traceparent: String?, tracestate: String?)]>([])
    }

    // Nothing recorded beyond spans: a fuzz run must not grow with the number of inputs.
    let inner = InMemoryTracer(recordInjections: false, recordExtractions: false)
    let observations = Observations()

    func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> InMemorySpan {
        inner.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    func activeSpan(identifiedBy context: ServiceContext) -> InMemorySpan? {
        inner.activeSpan(identifiedBy: context)
    }

    func forceFlush() {
        inner.forceFlush()
    }

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        inner.inject(context, into: &carrier, using: injector)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        let fields = (
            traceparent: extractor.extract(key: MessageHeaderName.traceparent, from: carrier),
            tracestate: extractor.extract(key: MessageHeaderName.tracestate, from: carrier)
        )
        observations.seen.withLock { $0.append(fields) }
        inner.extract(carrier, into: &context, using: extractor)
    }
}
