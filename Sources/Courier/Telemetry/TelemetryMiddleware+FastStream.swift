import CoreMetrics
import Logging
import Synchronization
import Tracing

// FastStream's conventions, for one trace with FastStream services: spans named
// "{destination} {operation}", a `create` span per message of a consumed batch, its links.
extension TelemetryMiddleware {
    func consumeWithFastStream(
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
                ofKind: .consumer
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
            ofKind: .consumer
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
    func fastStreamBatchLinks(_ messages: [IncomingMessage], _ contexts: [ServiceContext?]) -> [SpanLink] {
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

    func publishWithFastStream(_ publication: Publication, _ tracer: any Tracer, _ next: PublishNext) async throws -> [PublishReceipt] {
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
                ofKind: .producer
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
            ofKind: .producer
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
}
