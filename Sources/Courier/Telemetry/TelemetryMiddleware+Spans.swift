import CoreMetrics
import Logging
import Synchronization
import Tracing

/// The type of a value last found not to adopt ``MessagingSpanAttributes`` (its metatype's
/// identity), so that ``TelemetryMiddleware`` casts such values once, not per message. Types
/// never change their conformances while the process runs, so any value read is safe to use.
private let lastTypeWithoutAttributes = Atomic<Int>(0)

// What both conventions share: running the handler or the send inside a span with its metrics,
// span names and attributes, error recording, and the trace context in and out of headers.
extension TelemetryMiddleware {
    // Inlined into their callers, as the conventions' consume and publish are into theirs: each
    // async function called is a frame allocated and a switch per message.
    @inline(__always)
    func runProcess(
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


    @inline(__always)
    func runSend(
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

    func spanName(_ operation: String, _ destination: String?) -> String {
        spanNames.name(operation, destination)
    }

    func commonAttributes(_ broker: BrokerDescription, _ destination: String, temporary: Bool) -> SpanAttributes {
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

    func addMessageAttributes(_ message: OutgoingMessage, to attributes: inout SpanAttributes) {
        attributes.set(MessagingAttribute.messageID, value: .string(message.messageID))
        attributes.set(MessagingAttribute.conversationID, value: .string(message.correlationID))
        attributes.set(MessagingAttribute.bodySize, value: .int64(Int64(message.body.readableBytes)))
    }

    /// Marks `span` failed; returns the `error.type` value (the error's Swift type name).
    func recordFailure(_ error: any Error, on span: any Span) -> String {
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
    static func spanAttributes(of value: (any Sendable)?) -> (any MessagingSpanAttributes)? {
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
    func inject(
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

    func extract(
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
