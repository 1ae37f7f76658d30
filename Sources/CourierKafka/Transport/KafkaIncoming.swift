import Courier
import Logging
import NIOCore

/// Reads records the way FastStream writes them, and writes records the way it reads them:
/// record headers `content-type` (empty for raw bytes), `correlation_id`, `reply_to`, then the
/// rest (`traceparent`, `tracestate`, `baggage`…), every value UTF-8.
package enum KafkaIncoming {
    /// The message for `record`. A header value that is not UTF-8 becomes the message's
    /// envelope error: logged, traced as an error and settled by the ack policy, like any
    /// message its handler cannot read.
    package static func message(_ record: KafkaRecord, group: String?, logger: Logger) -> IncomingMessage {
        var headers = MessageHeaders()
        var malformed: [String] = []
        for (name, value) in record.headers {
            if let text = UTF8Text.string(value) {
                headers[name] = text
            } else {
                malformed.append(name)
            }
        }
        let info = KafkaMessageInfo(
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            timestampMilliseconds: record.timestampMilliseconds,
            key: record.key,
            isTombstone: record.value == nil,
            group: group
        )
        let correlationID = headers[MessageHeaderName.correlationID]
        var message = IncomingMessage(
            body: record.value ?? ByteBuffer(),
            headers: headers,
            destination: record.topic,
            correlationID: correlationID,
            messageID: headers[MessageHeaderName.messageID] ?? "\(record.offset)-\(record.timestampMilliseconds ?? 0)",
            replyTo: headers[MessageHeaderName.replyTo].flatMap { $0.isEmpty ? nil : $0 },
            contentType: headers[MessageHeaderName.contentType].flatMap { $0.isEmpty ? nil : $0 },
            raw: info
        )
        if !malformed.isEmpty {
            let error = KafkaError(
                .malformedRecord,
                "record \(record.topicPartition)@\(record.offset) has header values that are not UTF-8: \(malformed.joined(separator: ", "))"
            )
            logger.error("malformed Kafka record", metadata: ["courier.destination": "\(record.topic)", "error": "\(error)"])
            message.envelopeError = error
        }
        return message
    }

    /// The record headers of `message`. A batch writes `content-type` only when there is one,
    /// as FastStream's `publish_batch` does.
    static func headers(of message: OutgoingMessage, inBatch: Bool) -> MessageHeaders {
        var headers = MessageHeaders()
        if !inBatch || message.contentType != nil { headers[MessageHeaderName.contentType] = message.contentType ?? "" }
        headers[MessageHeaderName.correlationID] = message.correlationID
        if let replyTo = message.replyTo { headers[MessageHeaderName.replyTo] = replyTo }
        headers.merge(message.headers)
        return headers
    }
}
