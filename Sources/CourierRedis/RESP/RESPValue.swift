import NIOCore

/// A value of the Redis serialization protocol, RESP2 or RESP3.
package enum RESPValue: Sendable, Hashable {
    case simpleString(ByteBuffer)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case null
    case array([RESPValue])
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    /// Keys and values alternate.
    case map([RESPValue])
    case set([RESPValue])
    /// Out-of-band data: pub/sub messages in RESP3.
    case push([RESPValue])

    /// The value as text, for simple and bulk strings and numbers.
    package var string: String? {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer): String(buffer: buffer)
        case .integer(let value): String(value)
        case .bigNumber(let value): value
        case .double(let value): String(value)
        default: nil
        }
    }

    /// The bytes of a simple or bulk string.
    package var bytes: ByteBuffer? {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer): buffer
        default: nil
        }
    }

    /// The elements of an array, set or push, or the flattened pairs of a map.
    package var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values), .map(let values): values
        default: nil
        }
    }

    package var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
