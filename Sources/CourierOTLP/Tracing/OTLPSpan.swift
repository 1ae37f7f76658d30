public import Tracing
import Synchronization

/// A span of ``OTLPTracer``: its mutable state under one lock; at `end` it is handed to the
/// tracer's export queue as one value.
///
/// A span that is not sampled records nothing: every mutation returns at once, `isRecording` is
/// `false`, and its ``context`` still carries the trace (trace flags `00`) to its children and into
/// the message headers.
public final class OTLPSpan: Span {
    /// The span's service context: the parent's, with this span's ``OTLPSpanContext``.
    public let context: ServiceContext
    /// Where the ended span goes; `nil` for a span that is not sampled.
    private let sink: SpanQueue?
    private let spanContext: OTLPSpanContext
    private let kind: SpanKind
    private let startTime: UInt64
    private let state: Mutex<State>

    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var events: [SpanEvent] = []
        var links: [SpanLink] = []
        var status: SpanStatus? = nil
        var ended = false
    }

    init(name: String, kind: SpanKind, context: ServiceContext, spanContext: OTLPSpanContext, startTime: UInt64, sink: SpanQueue?) {
        self.context = context
        self.spanContext = spanContext
        self.kind = kind
        self.startTime = startTime
        self.sink = sink
        self.state = Mutex(State(name: name))
    }

    /// Whether the span is sampled and has not ended.
    public var isRecording: Bool {
        guard sink != nil else { return false }
        return state.withLock { !$0.ended }
    }

    /// The span's name; it can be changed until the span ends.
    public var operationName: String {
        get { state.withLock { $0.name } }
        set {
            guard sink != nil else { return }
            state.withLock { if !$0.ended { $0.name = newValue } }
        }
    }

    /// The span's attributes (empty for a span that is not sampled).
    public var attributes: SpanAttributes {
        get {
            guard sink != nil else { return [:] }
            return state.withLock { $0.attributes }
        }
        set {
            guard sink != nil else { return }
            state.withLock { if !$0.ended { $0.attributes = newValue } }
        }
    }

    /// Sets the status, as OpenTelemetry says: `ok` is final, and carries no description.
    public func setStatus(_ status: SpanStatus) {
        guard sink != nil else { return }
        let status = status.code == .ok ? SpanStatus(code: .ok, message: nil) : status
        state.withLock { state in
            guard !state.ended, state.status?.code != .ok else { return }
            state.status = status
        }
    }

    /// Adds an event.
    public func addEvent(_ event: SpanEvent) {
        guard sink != nil else { return }
        state.withLock { if !$0.ended { $0.events.append(event) } }
    }

    /// Records an error as an `exception` event with `exception.type` and `exception.message`
    /// (as swift-otel does); the status is the caller's to set.
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        guard sink != nil else { return }
        var eventAttributes: SpanAttributes = [
            "exception.type": .string(String(describing: type(of: error))),
            "exception.message": .string(String(describing: error)),
        ]
        eventAttributes.merge(attributes)
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: eventAttributes))
    }

    /// Adds a link; a link to a context without an ``OTLPSpanContext`` is not exported.
    public func addLink(_ link: SpanLink) {
        guard sink != nil else { return }
        state.withLock { if !$0.ended { $0.links.append(link) } }
    }

    /// Ends the span and queues it for export; later calls do nothing.
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let sink else { return }
        let endTime = instant().nanosecondsSinceEpoch
        let finished: FinishedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            return FinishedSpan(
                name: state.name,
                kind: kind,
                context: spanContext,
                startTime: startTime,
                endTime: endTime,
                attributes: state.attributes,
                events: state.events,
                links: state.links,
                status: state.status
            )
        }
        if let finished { sink.append(finished) }
    }
}
