import Courier
import Foundation
import NIOCore

/// A message as it travels in Redis, which has no headers: FastStream's envelope.
///
/// Writing always uses `BinaryMessageFormatV1`: an 8-byte magic `89 42 49 4E 0D 0A 1A 0A`, a
/// big-endian u16 version (1), u32 header offset (18), u32 body offset, u16 header count, then
/// length-prefixed UTF-8 keys and values (u16 byte lengths), then the body. Reading also accepts
/// FastStream's legacy JSON envelope `{"data": "…", "headers": {…}}` and plain payloads.
package struct RedisEnvelope: Sendable {
    package var headers: MessageHeaders
    package var body: ByteBuffer

    package init(headers: MessageHeaders, body: ByteBuffer) {
        self.headers = headers
        self.body = body
    }

    static let magic: [UInt8] = [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A]
    static let headerOffset: UInt32 = 18

    /// An envelope that cannot be read.
    package struct DecodingError: Error, CustomStringConvertible {
        package var description: String
    }

    // MARK: - Writing

    /// The headers FastStream writes, in its order: `correlation_id`, `content-type`, `reply_to`,
    /// `message_id`, then the message's own headers (trace context among them).
    package static func headers(of message: OutgoingMessage) -> MessageHeaders {
        var headers: MessageHeaders = [MessageHeaderName.correlationID: message.correlationID]
        if let contentType = message.contentType { headers[MessageHeaderName.contentType] = contentType }
        if let replyTo = message.replyTo { headers[MessageHeaderName.replyTo] = replyTo }
        headers[MessageHeaderName.messageID] = message.messageID
        headers.merge(message.headers)
        return headers
    }

    /// Encodes `message` in the binary format.
    package static func encode(_ message: OutgoingMessage, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        try RedisEnvelope(headers: headers(of: message), body: message.body).encode(allocator: allocator)
    }

    package func encode(allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var headerBytes = 0
        var headerCount = 0
        for (name, value) in headers {
            headerCount += 1
            let nameLength = name.utf8.count
            let valueLength = value.utf8.count
            guard nameLength <= UInt16.max, valueLength <= UInt16.max else {
                throw DecodingError(description: "header '\(name)' is longer than the envelope's 65535-byte limit")
            }
            headerBytes += 4 + nameLength + valueLength
        }
        guard headerCount <= UInt16.max else { throw DecodingError(description: "more than 65535 headers") }
        var buffer = allocator.buffer(capacity: 20 + headerBytes + body.readableBytes)
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(UInt16(1))
        buffer.writeInteger(Self.headerOffset)
        buffer.writeInteger(UInt32(20 + headerBytes))
        buffer.writeInteger(UInt16(headerCount))
        for (name, value) in headers {
            buffer.writeInteger(UInt16(name.utf8.count))
            buffer.writeString(name)
            buffer.writeInteger(UInt16(value.utf8.count))
            buffer.writeString(value)
        }
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    // MARK: - Reading

    /// Reads a stored value: the binary envelope, the legacy JSON one, or a plain payload.
    ///
    /// - Throws: ``DecodingError`` for a value that starts like the binary format but is truncated
    ///   or inconsistent.
    package static func decode(_ value: ByteBuffer) throws -> RedisEnvelope {
        if value.readableBytes >= 8, value.getBytes(at: value.readerIndex, length: 8) == magic {
            return try decodeBinary(value)
        }
        if let legacy = decodeLegacyJSON(value) { return legacy }
        return RedisEnvelope(headers: [:], body: value)
    }

    private static func decodeBinary(_ value: ByteBuffer) throws -> RedisEnvelope {
        var buffer = value
        buffer.moveReaderIndex(forwardBy: 8)
        guard let version = buffer.readInteger(as: UInt16.self),
            let headerOffset = buffer.readInteger(as: UInt32.self),
            let dataOffset = buffer.readInteger(as: UInt32.self)
        else { throw DecodingError(description: "envelope truncated in its preamble (\(value.readableBytes) bytes)") }
        guard version == 1 else { throw DecodingError(description: "envelope version \(version) is not supported (only 1)") }
        let total = value.readableBytes
        guard headerOffset >= 18, Int(headerOffset) + 2 <= total, dataOffset >= headerOffset + 2, Int(dataOffset) <= total else {
            throw DecodingError(description: "envelope offsets (headers \(headerOffset), data \(dataOffset)) do not fit its \(total) bytes")
        }
        buffer.moveReaderIndex(to: value.readerIndex + Int(headerOffset))
        let count = buffer.readInteger(as: UInt16.self)!
        var headerSection = buffer.getSlice(at: buffer.readerIndex, length: Int(dataOffset) - Int(headerOffset) - 2)!
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(Int(count))
        for index in 0..<count {
            guard let name = readString(&headerSection), let headerValue = readString(&headerSection) else {
                throw DecodingError(description: "envelope header \(index + 1) of \(count) is truncated or not UTF-8")
            }
            pairs.append((name, headerValue))
        }
        guard headerSection.readableBytes == 0 else {
            throw DecodingError(description: "envelope headers end \(headerSection.readableBytes) bytes before the data offset")
        }
        let body = value.getSlice(at: value.readerIndex + Int(dataOffset), length: total - Int(dataOffset))!
        return RedisEnvelope(headers: MessageHeaders(pairs), body: body)
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt16.self),
            let bytes = buffer.readSlice(length: Int(length))
        else { return nil }
        return bytes.withUnsafeReadableBytes { UTF8Text.string($0.assumingMemoryBound(to: UInt8.self)) }
    }

    private static func decodeLegacyJSON(_ value: ByteBuffer) -> RedisEnvelope? {
        // Cheap test before parsing: a JSON object mentioning "data".
        guard value.getInteger(at: value.readerIndex, as: UInt8.self) == UInt8(ascii: "{"),
            let object = try? JSONSerialization.jsonObject(with: Data(value.readableBytesView)) as? [String: Any],
            let data = object["data"] as? String
        else { return nil }
        guard Set(object.keys).isSubset(of: ["data", "headers"]) else { return nil }
        let fields = (object["headers"] as? [String: Any]) ?? [:]
        let pairs = fields.sorted(by: { $0.key < $1.key }).map { name, field in (name, field as? String ?? "\(field)") }
        return RedisEnvelope(headers: MessageHeaders(pairs), body: ByteBuffer(string: data))
    }
}
