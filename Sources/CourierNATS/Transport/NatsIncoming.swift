@_spi(BrokerModule) import Courier
import Logging
import NIOCore

/// Turns what nats.c delivered into an `IncomingMessage` and its settlement, reading the
/// headers the way FastStream writes them.
struct NatsIncoming: Sendable {
    let source: NatsSource
    let client: NatsClient
    let logger: Logger
    /// Whether the subject has `{name}` captures, found once rather than per message.
    private let hasCaptures: Bool

    init(source: NatsSource, client: NatsClient, logger: Logger) {
        self.source = source
        self.client = client
        self.logger = logger
        self.hasCaptures = TokenPattern(source.subject).hasCaptures
    }

    func delivery(_ raw: NatsRawMessage) -> (IncomingMessage, Settlement) {
        switch source.kind {
        case .subject:
            return (message(raw, replyTo: raw.reply, jetStream: nil, acknowledger: nil), .none)
        case .jetStream(_, _, let consumer):
            let metadata = raw.reply.flatMap(NatsJetStreamMetadata.init(ackSubject:))
            guard let ackSubject = raw.reply, metadata != nil else {
                return (message(raw, replyTo: raw.headers[MessageHeaderName.replyTo], jetStream: nil, acknowledger: nil), .none)
            }
            let acknowledger = NatsAcknowledger(client: client, ackSubject: ackSubject, defaultNackDelay: consumer.nackDelay)
            let settlement = acknowledger.makeSettlement()
            let message = message(raw, replyTo: raw.headers[MessageHeaderName.replyTo], jetStream: metadata, acknowledger: acknowledger)
            return (message, settlement)
        case .keyValue(let bucket):
            let prefix = "$KV.\(bucket)."
            let key = raw.subject.hasPrefix(prefix) ? String(raw.subject.dropFirst(prefix.count)) : raw.subject
            let metadata = raw.reply.flatMap(NatsJetStreamMetadata.init(ackSubject:))
            let operation = raw.headers["KV-Operation"].flatMap(NatsKeyValueEntry.Operation.init(rawValue:)) ?? .put
            let entry = NatsKeyValueEntry(bucket: bucket, key: key, revision: metadata?.streamSequence ?? 0, operation: operation)
            // No headers: a key-value entry carries no trace context, so it starts its own trace.
            let info = NatsMessageInfo(subject: raw.subject, path: [:], jetStream: metadata, keyValue: entry, acknowledger: nil)
            let message = IncomingMessage(body: raw.body, destination: bucket, messageID: String(entry.revision), raw: info)
            return (message, .none)
        }
    }

    private func message(
        _ raw: NatsRawMessage,
        replyTo: String?,
        jetStream: NatsJetStreamMetadata?,
        acknowledger: NatsAcknowledger?
    ) -> IncomingMessage {
        let headers = raw.headers
        let correlationID = headers[MessageHeaderName.correlationID]
        let contentType = headers[MessageHeaderName.contentType].flatMap { $0.isEmpty ? nil : $0 }
        let info = NatsMessageInfo(
            subject: raw.subject,
            path: hasCaptures ? source.captures(in: raw.subject) : [:],
            jetStream: jetStream,
            keyValue: nil,
            acknowledger: acknowledger
        )
        var message = IncomingMessage(
            body: raw.body,
            headers: headers,
            destination: raw.subject,
            correlationID: correlationID,
            messageID: jetStream.map { String($0.streamSequence) } ?? headers[MessageHeaderName.messageID] ?? correlationID,
            replyTo: replyTo,
            contentType: contentType,
            deliveryCount: jetStream?.deliveryCount ?? 1,
            raw: info
        )
        if let error = raw.headerError {
            logger.error("malformed NATS headers", metadata: ["courier.destination": "\(raw.subject)", "error": "\(error)"])
            message.envelopeError = error
        }
        return message
    }

    /// The headers a Courier message travels with, as FastStream writes them: `content-type`
    /// always (empty for raw bytes), `correlation_id`, for JetStream `reply_to`, then the rest.
    static func headers(of message: OutgoingMessage, replyToHeader: Bool) -> MessageHeaders {
        var headers: MessageHeaders = [
            MessageHeaderName.contentType: message.contentType ?? "",
            MessageHeaderName.correlationID: message.correlationID,
        ]
        if replyToHeader, let replyTo = message.replyTo { headers[MessageHeaderName.replyTo] = replyTo }
        headers[MessageHeaderName.messageID] = message.messageID
        headers.merge(message.headers)
        return headers
    }
}
