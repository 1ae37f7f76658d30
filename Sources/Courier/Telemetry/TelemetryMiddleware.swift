public import CoreMetrics
import Logging
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
///   `messaging.client.sent.messages`, `messaging.client.consumed.messages`.
/// - A missing or malformed `traceparent` or `baggage` is ignored (logged at debug level): the
///   message starts a new trace and is processed as usual.
public struct TelemetryMiddleware: CourierMiddleware {
    /// Span names and attributes to emit.
    public let conventions: TelemetryConventions
    /// Where a single message's process span hangs.
    public let processSpanParent: ProcessSpanParent
    private let explicitTracer: (any Tracer)?
    private let metrics: TelemetryMetrics

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

    private var tracer: any Tracer { explicitTracer ?? InstrumentationSystem.tracer }

    // MARK: - Consume

    public func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        let tracer = self.tracer
        var creationContexts: [ServiceContext?] = []
        creationContexts.reserveCapacity(context.messages.count)
        var baggage = Baggage()
        for message in context.messages {
            let extracted = extract(from: message.headers, tracer: tracer, logger: context)
            creationContexts.append(extracted.creationContext)
            baggage = baggage.merging(extracted.baggage)
        }
        switch conventions {
        case .openTelemetry:
            try await consumeWithOpenTelemetry(context, creationContexts, baggage, tracer, next)
        case .fastStream:
            try await consumeWithFastStream(context, creationContexts, baggage, tracer, next)
        }
    }

    private func consumeWithOpenTelemetry(
        _ context: MessageContext,
        _ creationContexts: [ServiceContext?],
        _ baggage: Baggage,
        _ tracer: any Tracer,
        _ next: ConsumeNext
    ) async throws {
        let destination = context.destination
        // A single delivery may name its destination more precisely than the subscription.
        let named = context.isBatch ? nil : (context.message.raw as? any MessagingSpanAttributes)?.messagingDestination(conventions: .openTelemetry)
        let destinationName = named?.attribute ?? destination.name
        let spanDestination = destination.isTemporary ? nil : (destination.template ?? named?.span ?? destination.name)
        var parent = ServiceContext.current ?? .topLevel
        var links: [ServiceContext] = []
        if context.isBatch {
            links = creationContexts.compactMap { $0 }
        } else if let creation = creationContexts[0] {
            switch processSpanParent {
            case .creationContext: parent = creation
            case .link: links = [creation]
            }
        }

        let span = tracer.startSpan(
            spanName("process", spanDestination),
            context: parent,
            ofKind: .consumer,
            at: DefaultTracerClock.now,
            function: #function,
            file: #fileID,
            line: #line
        )
        // A span that records nothing (the no-op tracer, an unsampled trace) needs no attributes.
        if span.isRecording {
            var attributes = commonAttributes(context.broker, destinationName, temporary: destination.isTemporary)
            attributes.set(MessagingAttribute.operationName, value: "process")
            attributes.set(MessagingAttribute.operationType, value: "process")
            if let template = destination.template { attributes.set(MessagingAttribute.destinationTemplate, value: .string(template)) }
            if let group = destination.consumerGroup { attributes.set(MessagingAttribute.consumerGroup, value: .string(group)) }
            if let name = destination.subscriptionName { attributes.set(MessagingAttribute.subscriptionName, value: .string(name)) }
            if context.isBatch {
                attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(context.messages.count)))
            } else {
                let message = context.message
                if let id = message.messageID { attributes.set(MessagingAttribute.messageID, value: .string(id)) }
                if let id = message.correlationID { attributes.set(MessagingAttribute.conversationID, value: .string(id)) }
                attributes.set(MessagingAttribute.bodySize, value: .int64(Int64(message.body.readableBytes)))
                (message.raw as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
            }
            span.attributes = attributes
        }
        for link in links { span.addLink(SpanLink(context: link, attributes: [:])) }

        let record = metrics.operation(counting: context.messages.count, in: MessagingMetric.consumedMessages, timing: MessagingMetric.processDuration) {
            var dimensions = metricDimensions(context.broker, spanDestination ?? destinationName, operation: "process")
            if let group = destination.consumerGroup { dimensions.append(MetricDimension(MessagingAttribute.consumerGroup, group)) }
            return dimensions
        }
        try await runProcess(context, span: span, baggage: baggage, origin: creationContexts[0], next: next, record: record)
    }

    private func consumeWithFastStream(
        _ context: MessageContext,
        _ creationContexts: [ServiceContext?],
        _ baggage: Baggage,
        _ tracer: any Tracer,
        _ next: ConsumeNext
    ) async throws {
        let named = context.isBatch ? nil : (context.message.raw as? any MessagingSpanAttributes)?.messagingDestination(conventions: .fastStream)
        let destination = named?.span ?? context.destination.name
        var attributes: SpanAttributes = [MessagingAttribute.system: .string(context.broker.messagingSystem)]
        let message = context.message
        attributes.set(MessagingAttribute.messageID, value: .string(message.messageID ?? message.correlationID ?? MessageIdentifier.make()))
        if let id = message.correlationID { attributes.set(MessagingAttribute.conversationID, value: .string(id)) }
        let payloadSize = context.messages.reduce(0) { $0 + $1.body.readableBytes }
        attributes.set(MessagingAttribute.FastStream.payloadSize, value: .int64(Int64(payloadSize)))
        attributes.set(MessagingAttribute.FastStream.destinationPublishName, value: .string(named?.attribute ?? destination))
        if context.isBatch {
            attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(context.messages.count)))
        }

        // FastStream starts a new trace for batches, and for messages it sent as part of one.
        let isBatch = context.isBatch || baggage["with_batch"] != nil
        var origin: ServiceContext
        if !isBatch, let creation = creationContexts[0] {
            origin = creation
        } else {
            let create = tracer.startSpan(
                "\(destination) create",
                context: ServiceContext.current ?? .topLevel,
                ofKind: .consumer,
                at: DefaultTracerClock.now,
                function: #function,
                file: #fileID,
                line: #line
            )
            create.attributes = attributes
            if isBatch {
                for link in fastStreamBatchLinks(context.messages, creationContexts) { create.addLink(link) }
            }
            origin = create.context
            create.end()
        }
        origin.baggage = nil

        let span = tracer.startSpan(
            "\(destination) process",
            context: origin,
            ofKind: .consumer,
            at: DefaultTracerClock.now,
            function: #function,
            file: #fileID,
            line: #line
        )
        attributes.set(MessagingAttribute.FastStream.operation, value: "process")
        if span.isRecording, !context.isBatch {
            (message.raw as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
        }
        span.attributes = attributes

        let record = metrics.operation(
            counting: context.messages.count,
            in: MessagingMetric.FastStream.processMessages,
            timing: MessagingMetric.FastStream.processDuration
        ) {
            [
                MetricDimension(MessagingAttribute.system, context.broker.messagingSystem),
                MetricDimension(MessagingAttribute.FastStream.destinationPublishName, destination),
            ]
        }
        try await runProcess(context, span: span, baggage: baggage, origin: origin, next: next, record: record)
    }

    /// FastStream links a batch's create span once per correlation id, the last message winning,
    /// with the number of messages sharing it when more than one.
    private func fastStreamBatchLinks(_ messages: [IncomingMessage], _ contexts: [ServiceContext?]) -> [SpanLink] {
        var order: [String] = []
        var latest: [String: (ServiceContext, Int)] = [:]
        for (message, context) in zip(messages, contexts) {
            guard let correlationID = message.correlationID else { continue }
            let count = (latest[correlationID]?.1 ?? 0) + 1
            if latest[correlationID] == nil { order.append(correlationID) }
            if let context {
                latest[correlationID] = (context, count)
            } else if let previous = latest[correlationID] {
                latest[correlationID] = (previous.0, count)
            }
        }
        return order.compactMap { id in
            guard let (context, count) = latest[id], !context.isEmpty else { return nil }
            let attributes: SpanAttributes = count > 1 ? [MessagingAttribute.batchMessageCount: .int64(Int64(count))] : [:]
            return SpanLink(context: context, attributes: attributes)
        }
    }

    /// Runs the rest of the consume path with `span` current, then ends it.
    private func runProcess(
        _ context: MessageContext,
        span: any Span,
        baggage: Baggage,
        origin: ServiceContext?,
        next: ConsumeNext,
        record: RecordDuration?
    ) async throws {
        var spanContext = span.context
        if !baggage.isEmpty { spanContext.baggage = baggage }
        var context = context
        context.serviceContext = spanContext
        context.span = span
        context.originContext = origin
        let start: ContinuousClock.Instant? = record == nil ? nil : .now
        do {
            try await ServiceContext.withValue(spanContext) {
                try await next(context)
            }
            if let record, let start { record(.now - start, nil) }
            span.end()
        } catch {
            let errorType = recordFailure(error, on: span)
            if let record, let start { record(.now - start, errorType) }
            span.end()
            throw error
        }
    }

    // MARK: - Publish

    public func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt] {
        switch conventions {
        case .openTelemetry: try await publishWithOpenTelemetry(publication, tracer, next)
        case .fastStream: try await publishWithFastStream(publication, tracer, next)
        }
    }

    private func publishWithOpenTelemetry(_ publication: Publication, _ tracer: any Tracer, _ next: PublishNext) async throws -> [PublishReceipt] {
        var publication = publication
        let named = (publication.destination as? any MessagingSpanAttributes)?.messagingDestination(conventions: .openTelemetry)
        let destinationName = named?.attribute ?? publication.destinationName
        let spanDestination = publication.destinationIsTemporary ? nil : (named?.span ?? publication.destinationName)
        let baggage = publication.serviceContext.baggage
        let span: any Span
        if publication.isBatch {
            var common = commonAttributes(publication.broker, destinationName, temporary: publication.destinationIsTemporary)
            (publication.destination as? any MessagingSpanAttributes)?.addSpanAttributes(to: &common, conventions: conventions)
            var links: [SpanLink] = []
            links.reserveCapacity(publication.messages.count)
            for index in publication.messages.indices {
                let create = tracer.startSpan(
                    spanName("create", spanDestination),
                    context: publication.serviceContext,
                    ofKind: .producer,
                    at: DefaultTracerClock.now,
                    function: #function,
                    file: #fileID,
                    line: #line
                )
                var attributes = common
                attributes.set(MessagingAttribute.operationName, value: "create")
                attributes.set(MessagingAttribute.operationType, value: "create")
                addMessageAttributes(publication.messages[index], to: &attributes)
                (publication.messages[index].options as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
                create.attributes = attributes
                inject(create.context, baggage: baggage, into: &publication.messages[index].headers, tracer: tracer)
                links.append(SpanLink(context: create.context, attributes: [:]))
                create.end()
            }
            span = tracer.startSpan(
                spanName("send", spanDestination),
                context: publication.serviceContext,
                ofKind: .client,
                at: DefaultTracerClock.now,
                function: #function,
                file: #fileID,
                line: #line
            )
            var attributes = common
            attributes.set(MessagingAttribute.operationName, value: "send")
            attributes.set(MessagingAttribute.operationType, value: "send")
            attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(publication.messages.count)))
            span.attributes = attributes
            for link in links { span.addLink(link) }
        } else {
            span = tracer.startSpan(
                spanName("send", spanDestination),
                context: publication.serviceContext,
                ofKind: .producer,
                at: DefaultTracerClock.now,
                function: #function,
                file: #fileID,
                line: #line
            )
            if span.isRecording {
                var attributes = commonAttributes(publication.broker, destinationName, temporary: publication.destinationIsTemporary)
                attributes.set(MessagingAttribute.operationName, value: "send")
                attributes.set(MessagingAttribute.operationType, value: "send")
                (publication.destination as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
                for message in publication.messages {
                    addMessageAttributes(message, to: &attributes)
                    (message.options as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
                }
                span.attributes = attributes
            }
            for index in publication.messages.indices {
                inject(span.context, baggage: baggage, into: &publication.messages[index].headers, tracer: tracer)
            }
        }

        let record = metrics.operation(
            counting: publication.messages.count,
            in: MessagingMetric.sentMessages,
            timing: MessagingMetric.clientOperationDuration,
            { metricDimensions(publication.broker, spanDestination ?? destinationName, operation: "send") },
            extraTimerDimensions: [MetricDimension(MessagingAttribute.operationType, "send")]
        )
        return try await runSend(publication, span: span, next: next, record: record)
    }

    private func publishWithFastStream(_ publication: Publication, _ tracer: any Tracer, _ next: PublishNext) async throws -> [PublishReceipt] {
        var publication = publication
        let named = (publication.destination as? any MessagingSpanAttributes)?.messagingDestination(conventions: .fastStream)
        let destination = named?.span ?? publication.destinationName
        var attributes: SpanAttributes = [
            MessagingAttribute.system: .string(publication.broker.messagingSystem),
            MessagingAttribute.destinationName: .string(named?.attribute ?? destination),
        ]
        if let first = publication.messages.first {
            attributes.set(MessagingAttribute.conversationID, value: .string(first.correlationID))
        }
        if publication.messages.count > 1 {
            attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(publication.messages.count)))
        }
        let baggage = publication.serviceContext.baggage
        let injected: ServiceContext
        let parent: ServiceContext
        if let origin = publication.originContext {
            // A return value or reply: FastStream re-sends the consumed message's own context.
            injected = origin
            parent = publication.serviceContext
        } else {
            let create = tracer.startSpan(
                "\(destination) create",
                context: publication.serviceContext,
                ofKind: .producer,
                at: DefaultTracerClock.now,
                function: #function,
                file: #fileID,
                line: #line
            )
            create.attributes = attributes
            injected = create.context
            parent = create.context
            create.end()
        }
        for index in publication.messages.indices {
            inject(injected, baggage: baggage, into: &publication.messages[index].headers, tracer: tracer)
        }
        let span = tracer.startSpan(
            "\(destination) publish",
            context: parent,
            ofKind: .producer,
            at: DefaultTracerClock.now,
            function: #function,
            file: #fileID,
            line: #line
        )
        attributes.set(MessagingAttribute.FastStream.operation, value: "publish")
        if span.isRecording {
            (publication.destination as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
            if publication.messages.count == 1 {
                (publication.messages[0].options as? any MessagingSpanAttributes)?.addSpanAttributes(to: &attributes, conventions: conventions)
            }
        }
        span.attributes = attributes

        let record = metrics.operation(
            counting: publication.messages.count,
            in: MessagingMetric.FastStream.publishMessages,
            timing: MessagingMetric.FastStream.publishDuration
        ) {
            [
                MetricDimension(MessagingAttribute.system, publication.broker.messagingSystem),
                MetricDimension(MessagingAttribute.destinationName, destination),
            ]
        }
        return try await runSend(publication, span: span, next: next, record: record)
    }

    /// Runs the rest of the publish path with `span` current, then ends it.
    private func runSend(
        _ publication: Publication,
        span: any Span,
        next: PublishNext,
        record: RecordDuration?
    ) async throws -> [PublishReceipt] {
        let start: ContinuousClock.Instant? = record == nil ? nil : .now
        do {
            let receipts = try await ServiceContext.withValue(span.context) {
                try await next(publication)
            }
            if let record, let start { record(.now - start, nil) }
            // What the broker confirmed (a partition and offset, a stream sequence) belongs on the span.
            if span.isRecording, publication.messages.count == 1,
                let details = receipts.first?.details as? any MessagingSpanAttributes
            {
                var attributes = span.attributes
                details.addSpanAttributes(to: &attributes, conventions: conventions)
                span.attributes = attributes
            }
            span.end()
            return receipts
        } catch {
            let errorType = recordFailure(error, on: span)
            if let record, let start { record(.now - start, errorType) }
            span.end()
            throw error
        }
    }

    // MARK: - Helpers

    private typealias RecordDuration = TelemetryMetrics.RecordDuration

    private func spanName(_ operation: String, _ destination: String?) -> String {
        guard let destination else { return operation }
        return "\(operation) \(destination)"
    }

    private func commonAttributes(_ broker: BrokerDescription, _ destination: String, temporary: Bool) -> SpanAttributes {
        var attributes: SpanAttributes = [
            MessagingAttribute.system: .string(broker.messagingSystem),
            MessagingAttribute.destinationName: .string(destination),
        ]
        if temporary { attributes.set(MessagingAttribute.destinationTemporary, value: .bool(true)) }
        if let address = broker.serverAddress { attributes.set(MessagingAttribute.serverAddress, value: .string(address)) }
        if let port = broker.serverPort { attributes.set(MessagingAttribute.serverPort, value: .int64(Int64(port))) }
        return attributes
    }

    private func addMessageAttributes(_ message: OutgoingMessage, to attributes: inout SpanAttributes) {
        attributes.set(MessagingAttribute.messageID, value: .string(message.messageID))
        attributes.set(MessagingAttribute.conversationID, value: .string(message.correlationID))
        attributes.set(MessagingAttribute.bodySize, value: .int64(Int64(message.body.readableBytes)))
    }

    /// The low-cardinality attributes metrics carry.
    private func metricDimensions(_ broker: BrokerDescription, _ destination: String, operation: String) -> [MetricDimension] {
        var dimensions = [
            MetricDimension(MessagingAttribute.system, broker.messagingSystem),
            MetricDimension(MessagingAttribute.operationName, operation),
            MetricDimension(MessagingAttribute.destinationName, destination),
        ]
        if let address = broker.serverAddress { dimensions.append(MetricDimension(MessagingAttribute.serverAddress, address)) }
        if let port = broker.serverPort { dimensions.append(MetricDimension(MessagingAttribute.serverPort, String(port))) }
        return dimensions
    }

    /// Marks `span` failed; returns the `error.type` value (the error's Swift type name).
    private func recordFailure(_ error: any Error, on span: any Span) -> String {
        let errorType = String(describing: type(of: error))
        span.recordError(error)
        if conventions == .openTelemetry {
            span.attributes.set(MessagingAttribute.errorType, value: .string(errorType))
        }
        span.setStatus(SpanStatus(code: .error, message: "\(errorType): \(error)"))
        return errorType
    }

    private func inject(_ context: ServiceContext, baggage: Baggage?, into headers: inout MessageHeaders, tracer: any Tracer) {
        tracer.inject(context, into: &headers, using: HeadersInjector())
        if let baggage, !baggage.isEmpty {
            headers[MessageHeaderName.baggage] = baggage.headerValue
        }
    }

    private func extract(
        from headers: MessageHeaders,
        tracer: any Tracer,
        logger messageContext: MessageContext
    ) -> (creationContext: ServiceContext?, baggage: Baggage) {
        var extractor = HeadersExtractor()
        if let traceparent = headers[MessageHeaderName.traceparent], !TraceParent.isWellFormed(traceparent) {
            messageContext.logger.debug("ignoring a malformed traceparent header; the message starts a new trace", metadata: ["traceparent": "\(traceparent)"])
            extractor.hidesTraceContext = true
        }
        var context = ServiceContext.topLevel
        tracer.extract(headers, into: &context, using: extractor)
        var baggage = Baggage()
        if let header = headers[MessageHeaderName.baggage] {
            let parsed = Baggage.parse(header: header)
            baggage = parsed.baggage
            if parsed.malformedMembers > 0 {
                messageContext.logger.debug("ignoring malformed baggage members", metadata: ["baggage": "\(header)", "malformed": "\(parsed.malformedMembers)"])
            }
        }
        return (context.isEmpty ? nil : context, baggage)
    }
}
