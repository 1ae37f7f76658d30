import NIOCore

/// One AMQP 0-9-1 frame: a method, a content header, a piece of a body, or a heartbeat, on a channel.
public struct AMQPFrame: Sendable, Hashable {
    public enum Payload: Sendable, Hashable {
        case method(AMQPMethod)
        /// The content header of the message the previous method carries.
        case header(classID: UInt16, bodySize: UInt64, properties: AMQPBasicProperties)
        case body(ByteBuffer)
        case heartbeat
    }

    public var channel: UInt16
    public var payload: Payload

    public init(channel: UInt16, payload: Payload) {
        self.channel = channel
        self.payload = payload
    }

    /// The bytes every connection starts with.
    public static let protocolHeader: [UInt8] = Array("AMQP".utf8) + [0, 0, 9, 1]

    /// A frame's size on the wire besides its payload: type, channel, size, frame-end.
    static let overhead = 8
    static let frameEnd: UInt8 = 0xCE

    package func encode(into buffer: inout ByteBuffer) throws(AMQPWireError) {
        let type: UInt8
        switch payload {
        case .method: type = 1
        case .header: type = 2
        case .body: type = 3
        case .heartbeat: type = 8
        }
        buffer.writeInteger(type)
        buffer.writeInteger(channel)
        let sizeIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        switch payload {
        case .method(let method):
            try method.encode(into: &buffer)
        case .header(let classID, let bodySize, let properties):
            buffer.writeInteger(classID)
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(bodySize)
            try properties.encode(into: &buffer)
        case .body(var bytes):
            buffer.writeBuffer(&bytes)
        case .heartbeat:
            break
        }
        buffer.setInteger(UInt32(buffer.writerIndex - sizeIndex - 4), at: sizeIndex)
        buffer.writeInteger(Self.frameEnd)
    }

    /// Reads one frame if `buffer` holds a whole one; nil when more bytes are needed. A frame
    /// larger than `maximumSize` (the negotiated frame-max) is an error before it is buffered.
    package static func decode(from buffer: inout ByteBuffer, maximumSize: Int) throws(AMQPWireError) -> AMQPFrame? {
        guard buffer.readableBytes >= 7,
            let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let channel = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self),
            let size = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt32.self)
        else { return nil }
        guard Int(size) + overhead <= maximumSize else {
            throw .invalid("a frame of \(Int(size) + overhead) bytes exceeds frame-max \(maximumSize)")
        }
        guard buffer.readableBytes >= Int(size) + overhead else { return nil }
        buffer.moveReaderIndex(forwardBy: 7)
        var payload = buffer.readSlice(length: Int(size))!
        guard buffer.readInteger(as: UInt8.self) == frameEnd else { throw .invalid("missing frame-end octet") }
        let frame: AMQPFrame
        switch type {
        case 1:
            let method = try AMQPMethod.decode(from: &payload)
            frame = AMQPFrame(channel: channel, payload: .method(method))
        case 2:
            guard let classID = payload.readInteger(as: UInt16.self), payload.readInteger(as: UInt16.self) != nil,
                let bodySize = payload.readInteger(as: UInt64.self)
            else { throw .truncated("content header") }
            let properties = try AMQPBasicProperties.decode(from: &payload)
            frame = AMQPFrame(channel: channel, payload: .header(classID: classID, bodySize: bodySize, properties: properties))
        case 3:
            return AMQPFrame(channel: channel, payload: .body(payload))
        case 8:
            guard channel == 0 else { throw .invalid("a heartbeat on channel \(channel)") }
            return AMQPFrame(channel: 0, payload: .heartbeat)
        default:
            throw .invalid("unknown frame type \(type)")
        }
        guard payload.readableBytes == 0 else { throw .invalid("\(payload.readableBytes) bytes left over in a frame of type \(type)") }
        return frame
    }
}

/// Splits the byte stream into frames, bounded by the negotiated frame-max.
struct AMQPFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = AMQPFrame

    /// The largest frame accepted, shared with the connection handler, which lowers it to the
    /// negotiated frame-max (both live on the channel's event loop).
    final class Limit {
        /// Before tuning: a server's `connection.start` with its properties fits in RabbitMQ's
        /// default frame-max of 128 KiB.
        var maximumFrameSize = 131_072
    }

    let limit: Limit

    init(limit: Limit = Limit()) {
        self.limit = limit
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> AMQPFrame? {
        try AMQPFrame.decode(from: &buffer, maximumSize: limit.maximumFrameSize)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> AMQPFrame? {
        try decode(buffer: &buffer)
    }
}

/// Writes frames.
struct AMQPFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = AMQPFrame

    func encode(data: AMQPFrame, out: inout ByteBuffer) throws {
        try data.encode(into: &out)
    }
}
