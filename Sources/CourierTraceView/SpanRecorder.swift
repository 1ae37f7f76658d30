public import Instrumentation
import Synchronization
public import Tracing

/// A tracer that records every finished span of the tracer it wraps, and otherwise changes nothing:
/// the wrapped tracer (swift-otel's, say) still samples, processes and exports as configured.
///
/// Trace and span ids are read the propagation way, by injecting a span's context and parsing
/// the W3C `traceparent` the wrapped tracer writes, so any W3C-propagating tracer works.
public final class SpanRecorder<Wrapped: Tracer>: Tracer {
    public typealias Span = RecordingSpan<Wrapped.Span>

    private let wrapped: Wrapped
    private let finished = Mutex<[RecordedSpan]>([])

    public init(wrapping tracer: Wrapped) {
        self.wrapped = tracer
    }

    /// Every span that has ended so far, in the order they ended.
    public var finishedSpans: [RecordedSpan] {
        finished.withLock { $0 }
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> InstrumentationContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> RecordingSpan<Wrapped.Span> {
        let parentContext = context()
        let start = instant()
        let span = wrapped.startSpan(
            operationName,
            context: parentContext,
            ofKind: kind,
            at: start,
            function: function,
            file: fileID,
            line: line
        )
        let identity = identify(span.context)
        let parent = identify(parentContext)
        return RecordingSpan(
            wrapping: span,
            kind: kind,
            traceID: identity?.traceID ?? "",
            spanID: identity?.spanID ?? "",
            parentSpanID: parent?.spanID,
            startTimeUnixNano: start.nanosecondsSinceEpoch
        ) { [weak self] record in
            self?.finished.withLock { $0.append(record) }
        } identify: { [weak self] context in
            self?.identify(context)
        }
    }

    @available(*, deprecated, message: "forwarded for the Tracer protocol only")
    public func forceFlush() {
        wrapped.forceFlush()
    }

    public func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext,
        into carrier: inout Carrier,
        using injector: Inject
    ) where Carrier == Inject.Carrier {
        wrapped.inject(context, into: &carrier, using: injector)
    }

    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier,
        into context: inout InstrumentationContext,
        using extractor: Extract
    ) where Carrier == Extract.Carrier {
        wrapped.extract(carrier, into: &context, using: extractor)
    }

    /// The trace and span id of the span in `context`, if it has one.
    func identify(_ context: InstrumentationContext) -> (traceID: String, spanID: String)? {
        var fields: [String: String] = [:]
        wrapped.inject(context, into: &fields, using: DictionaryInjector())
        guard let traceparent = fields["traceparent"] else { return nil }
        let parts = traceparent.split(separator: "-")
        guard parts.count >= 4, parts[1].utf8.count == 32, parts[2].utf8.count == 16 else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// A span of the wrapped tracer that reports itself to its ``SpanRecorder`` when it ends.
public final class RecordingSpan<Wrapped: Span>: Span {
    private let wrapped: Wrapped
    private let kind: SpanKind
    private let traceID: String
    private let spanID: String
    private let parentSpanID: String?
    private let startTimeUnixNano: UInt64
    private let onEnd: @Sendable (RecordedSpan) -> Void
    private let identify: @Sendable (InstrumentationContext) -> (traceID: String, spanID: String)?
    private let state = Mutex(State())

    private struct State {
        var status: SpanStatus?
        var links: [RecordedSpan.Link] = []
        var ended = false
    }

    init(
        wrapping span: Wrapped,
        kind: SpanKind,
        traceID: String,
        spanID: String,
        parentSpanID: String?,
        startTimeUnixNano: UInt64,
        onEnd: @escaping @Sendable (RecordedSpan) -> Void,
        identify: @escaping @Sendable (InstrumentationContext) -> (traceID: String, spanID: String)?
    ) {
        self.wrapped = span
        self.kind = kind
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.startTimeUnixNano = startTimeUnixNano
        self.onEnd = onEnd
        self.identify = identify
    }

    public var context: InstrumentationContext { wrapped.context }

    public var operationName: String {
        get { wrapped.operationName }
        set { wrapped.operationName = newValue }
    }

    public var attributes: SpanAttributes {
        get { wrapped.attributes }
        set { wrapped.attributes = newValue }
    }

    public var isRecording: Bool { wrapped.isRecording }

    public func setStatus(_ status: SpanStatus) {
        state.withLock { $0.status = status }
        wrapped.setStatus(status)
    }

    public func addEvent(_ event: SpanEvent) {
        wrapped.addEvent(event)
    }

    public func recordError<Instant: TracerInstant>(
        _ error: any Error,
        attributes: SpanAttributes,
        at instant: @autoclosure () -> Instant
    ) {
        wrapped.recordError(error, attributes: attributes, at: instant())
    }

    public func addLink(_ link: SpanLink) {
        if let identity = identify(link.context) {
            let recorded = RecordedSpan.Link(traceID: identity.traceID, spanID: identity.spanID, attributes: .init(link.attributes))
            state.withLock { $0.links.append(recorded) }
        }
        wrapped.addLink(link)
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant()
        let snapshot = state.withLock { state -> State? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }
        guard let snapshot else { return }
        let record = RecordedSpan(
            name: wrapped.operationName,
            kind: RecordedSpan.Kind(kind),
            traceID: traceID,
            spanID: spanID,
            parentSpanID: parentSpanID,
            startTimeUnixNano: startTimeUnixNano,
            endTimeUnixNano: end.nanosecondsSinceEpoch,
            attributes: .init(wrapped.attributes),
            links: snapshot.links,
            status: RecordedSpan.Status(snapshot.status)
        )
        wrapped.end(at: end)
        onEnd(record)
    }
}
