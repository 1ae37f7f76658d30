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
/// The type of a value last found not to adopt ``MessagingSpanAttributes`` (its metatype's
/// identity), so that ``TelemetryMiddleware`` casts such values once, not per message. Types
/// never change their conformances while the process runs, so any value read is safe to use.
private let lastTypeWithoutAttributes = Atomic<Int>(0)

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

    private func consumeWithOpenTelemetry(
        _ context: MessageContext,
        _ firstCreationContext: ServiceContext?,
        _ creationContexts: [ServiceContext?],
        _ baggage: Baggage,
        _ tracer: any Tracer,
        _ next: ConsumeNext
    ) async throws {
        let destination = context.destination
        // A single delivery may name its destination more precisely than the subscription.
        let named = context.isBatch ? nil : Self.spanAttributes(of: context.message.raw)?.messagingDestination(conventions: .openTelemetry)
        let destinationName = named?.attribute ?? destination.name
        let spanDestination = destination.isTemporary ? nil : (destination.template ?? named?.span ?? destination.name)
        let current = ServiceContext.current
        var parent = current ?? .topLevel
        var links: [ServiceContext] = []
        if context.isBatch {
            links = creationContexts.compactMap { $0 }
        } else if let creation = firstCreationContext {
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
                Self.spanAttributes(of: message.raw)?.addSpanAttributes(to: &attributes, conventions: conventions)
            }
            span.attributes = attributes
            for link in links { span.addLink(SpanLink(context: link, attributes: [:])) }
        }

        let instruments = metrics.instruments(
            .process,
            broker: context.broker,
            destination: spanDestination ?? destinationName,
            consumerGroup: destination.consumerGroup
        )
        instruments?.count(context.messages.count)
        try await runProcess(
            context,
            span: span,
            baggage: baggage,
            origin: firstCreationContext,
            current: current,
            next: next,
            instruments: instruments
        )
    }

    private func consumeWithFastStream(
        _ context: MessageContext,
        _ firstCreationContext: ServiceContext?,
        _ creationContexts: [ServiceContext?],
        _ baggage: Baggage,
        _ tracer: any Tracer,
        _ next: ConsumeNext
    ) async throws {
        let named = context.isBatch ? nil : Self.spanAttributes(of: context.message.raw)?.messagingDestination(conventions: .fastStream)
        let destination = named?.span ?? context.destination.name
        let message = context.message
        // Built for spans that record only (the no-op tracer, an unsampled trace need none).
        func attributes() -> SpanAttributes {
            var attributes: SpanAttributes = [MessagingAttribute.system: .string(context.broker.messagingSystem)]
            attributes.reserveCapacity(8)
            attributes.set(MessagingAttribute.messageID, value: .string(message.messageID ?? message.correlationID ?? MessageIdentifier.make()))
            if let id = message.correlationID { attributes.set(MessagingAttribute.conversationID, value: .string(id)) }
            let payloadSize = context.messages.reduce(0) { $0 + $1.body.readableBytes }
            attributes.set(MessagingAttribute.FastStream.payloadSize, value: .int64(Int64(payloadSize)))
            attributes.set(MessagingAttribute.FastStream.destinationPublishName, value: .string(named?.attribute ?? destination))
            if context.isBatch {
                attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(context.messages.count)))
            }
            return attributes
        }

        // FastStream starts a new trace for batches, and for messages it sent as part of one.
        let isBatch = context.isBatch || baggage["with_batch"] != nil
        let current = ServiceContext.current
        var origin: ServiceContext
        if !isBatch, let creation = firstCreationContext {
            origin = creation
        } else {
            let create = tracer.startSpan(
                "\(destination) create",
                context: current ?? .topLevel,
                ofKind: .consumer,
                at: DefaultTracerClock.now,
                function: #function,
                file: #fileID,
                line: #line
            )
            if create.isRecording {
                create.attributes = attributes()
                if isBatch {
                    for link in fastStreamBatchLinks(context.messages, creationContexts) { create.addLink(link) }
                }
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
        if span.isRecording {
            var attributes = attributes()
            attributes.set(MessagingAttribute.FastStream.operation, value: "process")
            if !context.isBatch {
                Self.spanAttributes(of: message.raw)?.addSpanAttributes(to: &attributes, conventions: conventions)
            }
            span.attributes = attributes
        }

        let instruments = metrics.instruments(.fastStreamProcess, broker: context.broker, destination: destination)
        instruments?.count(context.messages.count)
        try await runProcess(context, span: span, baggage: baggage, origin: origin, current: current, next: next, instruments: instruments)
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
    ///
    /// `current` is the caller's context, read once by the caller: when the span's context is
    /// empty (the no-op tracer, with no trace to continue) and so is the caller's, making it
    /// current would change nothing, and costs a task-local push per message.
    private func runProcess(
        _ context: MessageContext,
        span: any Span,
        baggage: Baggage,
        origin: ServiceContext?,
        current: ServiceContext?,
        next: ConsumeNext,
        instruments: TelemetryMetrics.Instruments?
    ) async throws {
        var spanContext = span.context
        if !baggage.isEmpty { spanContext.baggage = baggage }
        var context = context
        context.serviceContext = spanContext
        context.span = span
        context.propagator = tracer
        context.originContext = origin
        let start: ContinuousClock.Instant? = instruments == nil ? nil : .now
        do {
            if spanContext.isEmpty, current?.isEmpty ?? true {
                try await next(context)
            } else {
                try await ServiceContext.withValue(spanContext) {
                    try await next(context)
                }
            }
            if let instruments, let start { instruments.record(.now - start, errorType: nil) }
            span.end()
        } catch {
            let errorType = recordFailure(error, on: span)
            if let instruments, let start { instruments.record(.now - start, errorType: errorType) }
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
        let destinationAttributes = Self.spanAttributes(of: publication.destination)
        let named = destinationAttributes?.messagingDestination(conventions: .openTelemetry)
        let destinationName = named?.attribute ?? publication.destinationName
        let spanDestination = publication.destinationIsTemporary ? nil : (named?.span ?? publication.destinationName)
        let baggage = publication.serviceContext.baggage
        let span: any Span
        if publication.isBatch {
            var common = commonAttributes(publication.broker, destinationName, temporary: publication.destinationIsTemporary)
            destinationAttributes?.addSpanAttributes(to: &common, conventions: conventions)
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
                if create.isRecording {
                    var attributes = common
                    attributes.set(MessagingAttribute.operationName, value: "create")
                    attributes.set(MessagingAttribute.operationType, value: "create")
                    addMessageAttributes(publication.messages[index], to: &attributes)
                    Self.spanAttributes(of: publication.messages[index].options)?.addSpanAttributes(to: &attributes, conventions: conventions)
                    create.attributes = attributes
                }
                inject(create.context, baggage: baggage, into: &publication.messages, at: index, tracer: tracer)
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
            if span.isRecording {
                var attributes = common
                attributes.set(MessagingAttribute.operationName, value: "send")
                attributes.set(MessagingAttribute.operationType, value: "send")
                attributes.set(MessagingAttribute.batchMessageCount, value: .int64(Int64(publication.messages.count)))
                span.attributes = attributes
                for link in links { span.addLink(link) }
            }
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
                destinationAttributes?.addSpanAttributes(to: &attributes, conventions: conventions)
                for message in publication.messages {
                    addMessageAttributes(message, to: &attributes)
                    Self.spanAttributes(of: message.options)?.addSpanAttributes(to: &attributes, conventions: conventions)
                }
                span.attributes = attributes
            }
            for index in publication.messages.indices {
                inject(span.context, baggage: baggage, into: &publication.messages, at: index, tracer: tracer)
            }
        }

        let instruments = metrics.instruments(.send, broker: publication.broker, destination: spanDestination ?? destinationName)
        instruments?.count(publication.messages.count)
        return try await runSend(publication, span: span, next: next, instruments: instruments)
    }

    private func publishWithFastStream(_ publication: Publication, _ tracer: any Tracer, _ next: PublishNext) async throws -> [PublishReceipt] {
        var publication = publication
        let destinationAttributes = Self.spanAttributes(of: publication.destination)
        let named = destinationAttributes?.messagingDestination(conventions: .fastStream)
        let destination = named?.span ?? publication.destinationName
        // Built for spans that record only (the no-op tracer, an unsampled trace need none).
        func attributes() -> SpanAttributes {
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
            return attributes
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
            if create.isRecording { create.attributes = attributes() }
            injected = create.context
            parent = create.context
            create.end()
        }
        for index in publication.messages.indices {
            inject(injected, baggage: baggage, into: &publication.messages, at: index, tracer: tracer)
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
        if span.isRecording {
            var attributes = attributes()
            attributes.set(MessagingAttribute.FastStream.operation, value: "publish")
            destinationAttributes?.addSpanAttributes(to: &attributes, conventions: conventions)
            if publication.messages.count == 1 {
                Self.spanAttributes(of: publication.messages[0].options)?.addSpanAttributes(to: &attributes, conventions: conventions)
            }
            span.attributes = attributes
        }

        let instruments = metrics.instruments(.fastStreamPublish, broker: publication.broker, destination: destination)
        instruments?.count(publication.messages.count)
        return try await runSend(publication, span: span, next: next, instruments: instruments)
    }

    /// Runs the rest of the publish path with `span` current, then ends it.
    private func runSend(
        _ publication: Publication,
        span: any Span,
        next: PublishNext,
        instruments: TelemetryMetrics.Instruments?
    ) async throws -> [PublishReceipt] {
        let start: ContinuousClock.Instant? = instruments == nil ? nil : .now
        do {
            let receipts: [PublishReceipt]
            // An empty span context (the no-op tracer, outside any trace) over an empty caller's
            // context changes nothing: no task-local push for it.
            let spanContext = span.context
            if spanContext.isEmpty, ServiceContext.current?.isEmpty ?? true {
                receipts = try await next(publication)
            } else {
                receipts = try await ServiceContext.withValue(spanContext) {
                    try await next(publication)
                }
            }
            if let instruments, let start { instruments.record(.now - start, errorType: nil) }
            // What the broker confirmed (a partition and offset, a stream sequence) belongs on the span.
            if span.isRecording, publication.messages.count == 1,
                let details = Self.spanAttributes(of: receipts.first?.details)
            {
                var attributes = span.attributes
                details.addSpanAttributes(to: &attributes, conventions: conventions)
                span.attributes = attributes
            }
            span.end()
            return receipts
        } catch {
            let errorType = recordFailure(error, on: span)
            if let instruments, let start { instruments.record(.now - start, errorType: errorType) }
            span.end()
            throw error
        }
    }

    // MARK: - Helpers

    private func spanName(_ operation: String, _ destination: String?) -> String {
        guard let destination else { return operation }
        return "\(operation) \(destination)"
    }

    private func commonAttributes(_ broker: BrokerDescription, _ destination: String, temporary: Bool) -> SpanAttributes {
        var attributes: SpanAttributes = [
            MessagingAttribute.system: .string(broker.messagingSystem),
            MessagingAttribute.destinationName: .string(destination),
        ]
        // A span gets a dozen attributes: room for them at once, not a rehash at 3, 6 and 12.
        attributes.reserveCapacity(16)
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

    /// The broker-specific span attributes of `value` (a destination, options, a receipt's
    /// details, a delivery's info), when its type has any. Nil values (most options and
    /// details) are not cast at all, nor values of the last type found without any.
    private static func spanAttributes(of value: (any Sendable)?) -> (any MessagingSpanAttributes)? {
        guard let value else { return nil }
        // A cast to a protocol asks the runtime's conformance cache, per message; the types
        // that have no attributes (a plain name, a NATS subject) repeat, so one is remembered.
        let type = Int(bitPattern: UInt(bitPattern: ObjectIdentifier(Swift.type(of: value))))
        if lastTypeWithoutAttributes.load(ordering: .relaxed) == type { return nil }
        guard let attributes = value as? any MessagingSpanAttributes else {
            lastTypeWithoutAttributes.store(type, ordering: .relaxed)
            return nil
        }
        return attributes
    }

    /// Injects `context` and the baggage into the headers of `messages[index]`.
    ///
    /// The tracer writes into empty headers first: a tracer that injects nothing (the no-op
    /// tracer) then leaves the messages untouched, so the array (shared with the caller's
    /// publication) is not copied for nothing.
    private func inject(
        _ context: ServiceContext,
        baggage: Baggage?,
        into messages: inout [OutgoingMessage],
        at index: Int,
        tracer: any Tracer
    ) {
        var injected = MessageHeaders()
        tracer.inject(context, into: &injected, using: HeadersInjector())
        if let baggage, !baggage.isEmpty {
            injected[MessageHeaderName.baggage] = baggage.headerValue
        }
        guard !injected.isEmpty else { return }
        messages[index].headers.merge(injected)
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
