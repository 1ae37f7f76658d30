import Courier
import NIOCore

/// A value of an AMQP field table (RabbitMQ's set of types, which is what brokers and clients
/// such as aio-pika actually write, rather than the 0-9-1 specification's).
public enum AMQPFieldValue: Sendable, Hashable {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case float(Float)
    case double(Double)
    /// A decimal: `value` × 10^-`scale`.
    case decimal(scale: UInt8, value: UInt32)
    /// A long string: bytes, usually UTF-8 text.
    case longString([UInt8])
    case array([AMQPFieldValue])
    /// Seconds since 1970.
    case timestamp(UInt64)
    case table(AMQPFieldTable)
    case void
    case bytes([UInt8])

    /// A text value.
    public static func string(_ text: String) -> Self { .longString(Array(text.utf8)) }

    /// The value as text, when it is a string (long string or byte array) holding UTF-8.
    public var text: String? {
        switch self {
        case .longString(let bytes), .bytes(let bytes): UTF8Text.string(bytes)
        default: nil
        }
    }
}

/// An AMQP field table: names and values in the order they were written.
public struct AMQPFieldTable: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var entries: [(name: String, value: AMQPFieldValue)]

    public init(_ entries: [(name: String, value: AMQPFieldValue)] = []) {
        self.entries = entries
    }

    public init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        self.entries = elements.map { ($0.0, $0.1) }
    }

    public subscript(name: String) -> AMQPFieldValue? {
        get { entries.last { $0.name == name }?.value }
        set {
            entries.removeAll { $0.name == name }
            if let newValue { entries.append((name, newValue)) }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.name)
            hasher.combine(entry.value)
        }
    }
}

extension ByteBuffer {
    /// Reads a short string (one length byte, then the bytes), as UTF-8 text.
    mutating func readAMQPShortString() throws(AMQPWireError) -> String {
        guard let length = readInteger(as: UInt8.self), let bytes = readBytes(length: Int(length)) else { throw .truncated("short string") }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func writeAMQPShortString(_ text: String) throws(AMQPWireError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= 255 else { throw .invalid("a short string is at most 255 bytes: \(bytes.count)") }
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
    }

    mutating func readAMQPLongBytes() throws(AMQPWireError) -> [UInt8] {
        guard let length = readInteger(as: UInt32.self) else { throw .truncated("long string") }
        guard let bytes = readBytes(length: Int(length)) else { throw .truncated("long string of \(length) bytes") }
        return bytes
    }

    mutating func writeAMQPLongBytes(_ bytes: [UInt8]) {
        writeInteger(UInt32(bytes.count))
        writeBytes(bytes)
    }

    /// Reads a field table; nesting is bounded, so a hostile frame cannot exhaust the stack.
    mutating func readAMQPFieldTable(depth: Int = 0) throws(AMQPWireError) -> AMQPFieldTable {
        guard depth < 32 else { throw .invalid("field tables nested more than 32 deep") }
        guard let length = readInteger(as: UInt32.self) else { throw .truncated("field table") }
        guard var body = readSlice(length: Int(length)) else { throw .truncated("field table of \(length) bytes") }
        var table = AMQPFieldTable()
        while body.readableBytes > 0 {
            let name = try body.readAMQPShortString()
            table.entries.append((name, try body.readAMQPFieldValue(depth: depth)))
        }
        return table
    }

    mutating func writeAMQPFieldTable(_ table: AMQPFieldTable) throws(AMQPWireError) {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0))
        for (name, value) in table.entries {
            try writeAMQPShortString(name)
            try writeAMQPFieldValue(value)
        }
        setInteger(UInt32(writerIndex - lengthIndex - 4), at: lengthIndex)
    }

    mutating func readAMQPFieldValue(depth: Int) throws(AMQPWireError) -> AMQPFieldValue {
        guard let type = readInteger(as: UInt8.self) else { throw .truncated("field value") }
        func read<T: FixedWidthInteger>(_: T.Type) throws(AMQPWireError) -> T {
            guard let value = readInteger(as: T.self) else { throw .truncated("field value of type '\(Character(UnicodeScalar(type)))'") }
            return value
        }
        switch UnicodeScalar(type) {
        case "t": return .bool(try read(UInt8.self) != 0)
        case "b": return .int8(try read(Int8.self))
        case "B": return .uint8(try read(UInt8.self))
        case "s": return .int16(try read(Int16.self))
        case "u": return .uint16(try read(UInt16.self))
        case "I": return .int32(try read(Int32.self))
        case "i": return .uint32(try read(UInt32.self))
        case "l": return .int64(try read(Int64.self))
        case "f": return .float(Float(bitPattern: try read(UInt32.self)))
        case "d": return .double(Double(bitPattern: try read(UInt64.self)))
        case "D": return .decimal(scale: try read(UInt8.self), value: try read(UInt32.self))
        case "S": return .longString(try readAMQPLongBytes())
        case "x": return .bytes(try readAMQPLongBytes())
        case "A":
            guard depth < 32 else { throw .invalid("field arrays nested more than 32 deep") }
            let length = try read(UInt32.self)
            guard var body = readSlice(length: Int(length)) else { throw .truncated("field array of \(length) bytes") }
            var values: [AMQPFieldValue] = []
            while body.readableBytes > 0 { values.append(try body.readAMQPFieldValue(depth: depth + 1)) }
            return .array(values)
        case "T": return .timestamp(try read(UInt64.self))
        case "F": return .table(try readAMQPFieldTable(depth: depth + 1))
        case "V": return .void
        default: throw .invalid("unknown field type 0x\(String(type, radix: 16))")
        }
    }

    mutating func writeAMQPFieldValue(_ value: AMQPFieldValue) throws(AMQPWireError) {
        func tag(_ character: Character) { writeInteger(character.asciiValue!) }
        switch value {
        case .bool(let flag): tag("t"); writeInteger(UInt8(flag ? 1 : 0))
        case .int8(let number): tag("b"); writeInteger(number)
        case .uint8(let number): tag("B"); writeInteger(number)
        case .int16(let number): tag("s"); writeInteger(number)
        case .uint16(let number): tag("u"); writeInteger(number)
        case .int32(let number): tag("I"); writeInteger(number)
        case .uint32(let number): tag("i"); writeInteger(number)
        case .int64(let number): tag("l"); writeInteger(number)
        case .float(let number): tag("f"); writeInteger(number.bitPattern)
        case .double(let number): tag("d"); writeInteger(number.bitPattern)
        case .decimal(let scale, let number): tag("D"); writeInteger(scale); writeInteger(number)
        case .longString(let bytes): tag("S"); writeAMQPLongBytes(bytes)
        case .bytes(let bytes): tag("x"); writeAMQPLongBytes(bytes)
        case .array(let values):
            tag("A")
            let lengthIndex = writerIndex
            writeInteger(UInt32(0))
            for value in values { try writeAMQPFieldValue(value) }
            setInteger(UInt32(writerIndex - lengthIndex - 4), at: lengthIndex)
        case .timestamp(let seconds): tag("T"); writeInteger(seconds)
        case .table(let table): tag("F"); try writeAMQPFieldTable(table)
        case .void: tag("V")
        }
    }
}

/// A frame or value that does not follow AMQP 0-9-1: the connection is closed with a protocol error.
public enum AMQPWireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bytes end before the value does.
    case truncated(String)
    /// The bytes are not a valid value.
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated(let what): "AMQP frame truncated: \(what)"
        case .invalid(let what): "invalid AMQP frame: \(what)"
        }
    }
}
