import CoreMetrics
import Logging
import Synchronization
import Tracing

// The OpenTelemetry messaging conventions: `process`, `send` and `create` spans named
// "{operation} {destination}", the creation context as the process span's parent (or a link).
extension TelemetryMiddleware {
    @inline(__always)
    func consumeWithOpenTelemetry(
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
            ofKind: .consumer
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


    @inline(__always)
    func publishWithOpenTelemetry(_ publication: Publication, _ tracer: any Tracer, _ next: PublishNext) async throws -> [PublishReceipt] {
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
                    ofKind: .producer
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
                ofKind: .client
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
                ofKind: .producer
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
}
