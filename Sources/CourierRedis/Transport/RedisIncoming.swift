import Courier
import Logging
import NIOCore

/// Turns a stored value into an `IncomingMessage`: the envelope's headers become the message's
/// fields; a broken envelope becomes the message's `envelopeError`.
enum RedisIncoming {
    static func message(from payload: ByteBuffer, destination: String, info: RedisMessageInfo, logger: Logger) -> IncomingMessage {
        let envelope: RedisEnvelope
        do {
            envelope = try RedisEnvelope.decode(payload)
        } catch {
            logger.error("malformed Redis envelope", metadata: ["courier.destination": "\(destination)", "error": "\(error)"])
            var message = IncomingMessage(body: payload, destination: destination, messageID: info.entryID, raw: info)
            message.envelopeError = error
            return message
        }
        let headers = envelope.headers
        return IncomingMessage(
            body: envelope.body,
            headers: headers,
            destination: destination,
            correlationID: headers[MessageHeaderName.correlationID],
            messageID: info.entryID ?? headers[MessageHeaderName.messageID],
            replyTo: headers[MessageHeaderName.replyTo],
            contentType: headers[MessageHeaderName.contentType],
            raw: info
        )
    }
}
