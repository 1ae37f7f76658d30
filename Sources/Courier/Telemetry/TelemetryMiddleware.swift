public import CoreMetrics
import Logging
import Synchronization
public import Tracing

/// Traces and measures every publish and every processed message, by the OpenTelemetry messaging
/// semantic conventions (or FastStream's, see ``TelemetryConventions``).
///
/// Written against swift-distributed-tracing, so it works with whatever tracer the application
/// bootstrapped (swift-otel in production, `InMemoryTracer` in tests).
///
/// - Publish: a PRODUCER `send {destination}` span around the send, its context injected into the
///   message headers through the tracer (W3C `traceparent`/`tracestate` with swift-otel), plus the
///   W3C `baggage` header. A batch gets a PRODUCER `create` span per message, each injected into its
///   message, and a CLIENT `send` span linking all of them.
/// - Consume: the creation context is extracted from the headers; a CONSUMER `process {destination}`
///   span is its child (or links to it, see ``ProcessSpanParent``); a batch's process span links to
///   every message's creation context. The handler runs with the span current, so everything it
///   publishes, or calls with a traced client, continues the trace.
/// - Errors: recorded on the span with error status and `error.type`; the error then goes on to the
///   subscriber's ack policy.
/// - Metrics (swift-metrics): `messaging.client.operation.duration`, `messaging.process.duration`,
///   `messaging.client.sent.messages`, `messaging.client.consumed.messages`. The broker's own
///   `messaging.client.settled.messages` and `messaging.process.active_messages` go to the same
///   factory.
/// - A missing or malformed `traceparent` or `baggage` is ignored (logged at debug level): the
///   message starts a new trace and is processed as usual.
public struct TelemetryMiddleware: CourierMiddleware {
    /// Span names and attributes to emit.
    public let conventions: TelemetryConventions
    /// Where a single message's process span hangs.
    public let processSpanParent: ProcessSpanParent
    let explicitTracer: (any Tracer)?
    let metrics: TelemetryMetrics
    let spanNames = SpanNames()

    /// Creates the middleware.
    ///
    /// - Parameters:
    ///   - conventions: span names and attributes; `.openTelemetry` by default.
    ///   - processSpanParent: parent or link for single messages; parent by default.
    ///   - tracer: the tracer to use; by default the one bootstrapped in `InstrumentationSystem`,
    ///     looked up when each span starts, so the middleware may be created before bootstrapping.
    ///   - metricsFactory: where metrics go; by default the bootstrapped `MetricsSystem`.
    public init(
        conventions: TelemetryConventions = .openTelemetry,
        processSpanParent: ProcessSpanParent = .creationContext,
        tracer: (any Tracer)? = nil,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.conventions = conventions
        self.processSpanParent = processSpanParent
        self.explicitTracer = tracer
        self.metrics = TelemetryMetrics(factory: metricsFactory)
    }

    var tracer: any Tracer { explicitTracer ?? InstrumentationSystem.tracer }

    /// The metrics factory the application gave (nil: the bootstrapped one); the broker's own
    /// subscriber metrics go there too.
    var metricsFactory: (any MetricsFactory)? { metrics.factory }

    // MARK: - Consume

    public func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        let tracer = self.tracer
        // A single message needs no array of creation contexts (nor baggage merged into one).
        let first: ServiceContext?
        var creationContexts: [ServiceContext?] = []
        var baggage: Baggage
        if !context.isBatch {
            let extracted = extract(from: context.message.headers, tracer: tracer, logger: context)
            first = extracted.creationContext
            baggage = extracted.baggage
        } else {
            creationContexts.reserveCapacity(context.messages.count)
            baggage = Baggage()
            for message in context.messages {
                let extracted = extract(from: message.headers, tracer: tracer, logger: context)
                creationContexts.append(extracted.creationContext)
                if !extracted.baggage.isEmpty { baggage = baggage.merging(extracted.baggage) }
            }
            first = creationContexts.first ?? nil
        }
        switch conventions {
        case .openTelemetry:
            try await consumeWithOpenTelemetry(context, first, creationContexts, baggage, tracer, next)
        case .fastStream:
            try await consumeWithFastStream(context, first, creationContexts, baggage, tracer, next)
        }
    }

    // MARK: - Publish

    public func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt] {
        switch conventions {
        case .openTelemetry: try await publishWithOpenTelemetry(publication, tracer, next)
        case .fastStream: try await publishWithFastStream(publication, tracer, next)
        }
    }
}
