import NIOCore

/// A reply that breaks the protocol or a limit; the connection that read it is closed.
package struct RESPProtocolError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// Decodes RESP2 and RESP3 values incrementally, within limits, so that a malformed or oversized
/// reply ends in a clear error instead of a crash or an ever-growing buffer.
package struct RESPDecoder: ByteToMessageDecoder {
    package typealias InboundOut = RESPValue

    /// Limits on what one reply may hold.
    package struct Limits: Sendable {
        /// The longest bulk string (Redis's own limit is 512 MiB).
        package var maxBulkLength = 512 * 1024 * 1024
        /// The most elements in one array, map, set or push.
        package var maxElements = 16 * 1024 * 1024
        /// The deepest nesting of aggregates.
        package var maxDepth = 32
        /// The longest line (simple string, error, number) before its CRLF.
        package var maxLineLength = 64 * 1024

        package init() {}
    }

    let limits: Limits

    package init(limits: Limits = Limits()) {
        self.limits = limits
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try Self.parse(&buffer, limits: limits) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Parses one complete value from the front of `buffer`, consuming it; nil (and nothing
    /// consumed) when the value is not complete yet.
    package static func parse(_ buffer: inout ByteBuffer, limits: Limits = Limits()) throws -> RESPValue? {
        var cursor = buffer
        guard let value = try parseValue(&cursor, limits: limits, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    private static func parseValue(_ buffer: inout ByteBuffer, limits: Limits, depth: Int) throws -> RESPValue? {
        guard let marker = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        var cursor = buffer
        cursor.moveReaderIndex(forwardBy: 1)
        guard let line = try readLine(&cursor, limits: limits) else { return nil }
        let value: RESPValue
        switch marker {
        case UInt8(ascii: "+"):
            value = .simpleString(line)
        case UInt8(ascii: "-"), UInt8(ascii: "!"):
            if marker == UInt8(ascii: "!") {
                guard let body = try readBulk(&cursor, length: try length(line, limits: limits), limits: limits) else { return nil }
                value = .error(String(buffer: body))
            } else {
                value = .error(String(buffer: line))
            }
        case UInt8(ascii: ":"):
            guard let number = Int64(String(buffer: line)) else { throw RESPProtocolError("invalid integer '\(String(buffer: line))'") }
            value = .integer(number)
        case UInt8(ascii: "$"), UInt8(ascii: "="):
            let count = try signedLength(line, limits: limits, maximum: limits.maxBulkLength)
            if count < 0 {
                value = .null
            } else {
                guard var body = try readBulk(&cursor, length: count, limits: limits) else { return nil }
                if marker == UInt8(ascii: "=") { body.moveReaderIndex(forwardBy: min(4, body.readableBytes)) }  // "txt:"
                value = .bulkString(body)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard depth < limits.maxDepth else { throw RESPProtocolError("reply nested deeper than \(limits.maxDepth)") }
            let declared = try signedLength(line, limits: limits, maximum: limits.maxElements)
            if declared < 0 {
                value = .null
                break
            }
            let pairs = marker == UInt8(ascii: "%") || marker == UInt8(ascii: "|")
            let count = pairs ? declared * 2 : declared
            guard count <= limits.maxElements else { throw RESPProtocolError("aggregate of \(count) elements exceeds \(limits.maxElements)") }
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let element = try parseValue(&cursor, limits: limits, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            if marker == UInt8(ascii: "|") {
                // Attributes describe the value that follows; Courier has no use for them. That value
                // sits one level deeper, so a chain of attributes is bounded by maxDepth like any
                // nesting: at the same depth, each attribute of a chain was one more recursion.
                buffer = cursor
                return try parseValue(&buffer, limits: limits, depth: depth + 1)
            }
            switch marker {
            case UInt8(ascii: "~"): value = .set(elements)
            case UInt8(ascii: ">"): value = .push(elements)
            case UInt8(ascii: "%"): value = .map(elements)
            default: value = .array(elements)
            }
        case UInt8(ascii: "_"):
            value = .null
        case UInt8(ascii: "#"):
            switch String(buffer: line) {
            case "t": value = .boolean(true)
            case "f": value = .boolean(false)
            default: throw RESPProtocolError("invalid boolean '\(String(buffer: line))'")
            }
        case UInt8(ascii: ","):
            let text = String(buffer: line)
            switch text {
            case "inf": value = .double(.infinity)
            case "-inf": value = .double(-.infinity)
            case "nan": value = .double(.nan)
            default:
                guard let number = Double(text) else { throw RESPProtocolError("invalid double '\(text)'") }
                value = .double(number)
            }
        case UInt8(ascii: "("):
            value = .bigNumber(String(buffer: line))
        default:
            throw RESPProtocolError("unknown reply type byte 0x\(String(marker, radix: 16))")
        }
        buffer = cursor
        return value
    }

    /// The bytes up to the next CRLF, consuming the CRLF too; nil if it has not arrived.
    private static func readLine(_ buffer: inout ByteBuffer, limits: Limits) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            // A line may arrive without its LF but with its CR: that byte is not part of the line,
            // or a line of exactly the limit would be refused when a read ends between CR and LF.
            let pending = view.last == UInt8(ascii: "\r") ? view.count - 1 : view.count
            if pending > limits.maxLineLength { throw RESPProtocolError("reply line longer than \(limits.maxLineLength) bytes") }
            return nil
        }
        let length = newline - view.startIndex
        guard length >= 1, view[newline - 1] == UInt8(ascii: "\r") else { throw RESPProtocolError("reply line not ended by CRLF") }
        guard length - 1 <= limits.maxLineLength else { throw RESPProtocolError("reply line longer than \(limits.maxLineLength) bytes") }
        let line = buffer.readSlice(length: length - 1)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func readBulk(_ buffer: inout ByteBuffer, length: Int, limits: Limits) throws -> ByteBuffer? {
        guard buffer.readableBytes >= length + 2 else { return nil }
        let body = buffer.readSlice(length: length)!
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else {
            throw RESPProtocolError("bulk string not ended by CRLF")
        }
        return body
    }

    private static func length(_ line: ByteBuffer, limits: Limits) throws -> Int {
        let value = try signedLength(line, limits: limits, maximum: limits.maxBulkLength)
        guard value >= 0 else { throw RESPProtocolError("negative length") }
        return value
    }

    private static func signedLength(_ line: ByteBuffer, limits: Limits, maximum: Int) throws -> Int {
        guard let value = Int(String(buffer: line)), value >= -1 else {
            throw RESPProtocolError("invalid length '\(String(buffer: line))'")
        }
        guard value <= maximum else { throw RESPProtocolError("length \(value) exceeds the limit of \(maximum)") }
        return value
    }
}
