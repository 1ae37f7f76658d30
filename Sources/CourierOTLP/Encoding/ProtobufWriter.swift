/// A minimal protobuf writer: varints, fixed64/fixed32, length-delimited fields, and nested
/// messages whose length is written after their body (in place for bodies under 128 bytes, most
/// of them; with one `memmove` of a longer body), with no size pre-pass and no intermediate
/// buffers.
struct ProtobufWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 1024) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    @inline(__always)
    mutating func tag(_ field: UInt32, _ wireType: WireType) {
        varint(UInt64(field << 3 | UInt32(wireType.rawValue)))
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// A varint field (enums, int64 as two's complement, bools); written even when zero.
    mutating func varintField(_ field: UInt32, _ value: UInt64) {
        tag(field, .varint)
        varint(value)
    }

    mutating func fixed64Field(_ field: UInt32, _ value: UInt64) {
        tag(field, .fixed64)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func fixed32Field(_ field: UInt32, _ value: UInt32) {
        tag(field, .fixed32)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func doubleField(_ field: UInt32, _ value: Double) {
        fixed64Field(field, value.bitPattern)
    }

    /// A string field; written even when empty (oneof members need that; callers skip empty optionals).
    mutating func stringField(_ field: UInt32, _ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            tag(field, .lengthDelimited)
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// Bytes already encoded (a message body written once and reused).
    mutating func appendRaw(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    /// A 16-byte trace id, big-endian.
    mutating func traceIDField(_ field: UInt32, _ id: OTLPTraceID) {
        tag(field, .lengthDelimited)
        varint(16)
        withUnsafeBytes(of: id.high.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: id.low.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// An 8-byte span id, big-endian.
    mutating func spanIDField(_ field: UInt32, _ id: UInt64) {
        tag(field, .lengthDelimited)
        varint(8)
        withUnsafeBytes(of: id.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// A nested message: `body` writes its fields after a one-byte place for their length, which
    /// is filled in afterwards. Most nested messages (a key-value pair, an attribute's value, an
    /// event) are shorter than 128 bytes, whose length is one byte: nothing moves. A longer one
    /// (a span, the batch around them) gets the rest of its length inserted, moving its body once.
    @inline(__always)
    mutating func messageField(_ field: UInt32, _ body: (inout ProtobufWriter) -> Void) {
        tag(field, .lengthDelimited)
        let place = bytes.count
        bytes.append(0)
        body(&self)
        let length = bytes.count - place - 1
        if length < 0x80 {
            bytes[place] = UInt8(length)
        } else {
            insertLength(length, at: place)
        }
    }

    /// Writes `length` as a varint at `place`, whose one byte is already there.
    @inline(never)
    private mutating func insertLength(_ length: Int, at place: Int) {
        var value = UInt64(length)
        bytes[place] = UInt8(truncatingIfNeeded: value) | 0x80
        value >>= 7
        var rest: [UInt8] = []
        while value >= 0x80 {
            rest.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        rest.append(UInt8(value))
        bytes.insert(contentsOf: rest, at: place + 1)
    }
}

/// A minimal protobuf reader, enough for `ExportTraceServiceResponse`.
struct ProtobufReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    struct Malformed: Error {}

    var isAtEnd: Bool { index >= bytes.count }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.count, shift < 64 else { throw Malformed() }
            let byte = bytes[index]
            index += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// The next field's number and wire type.
    mutating func tag() throws -> (field: UInt64, wireType: UInt64) {
        let tag = try varint()
        return (tag >> 3, tag & 7)
    }

    mutating func lengthDelimited() throws -> [UInt8] {
        let length = Int(try varint())
        guard length >= 0, index + length <= bytes.count else { throw Malformed() }
        defer { index += length }
        return Array(bytes[index..<(index + length)])
    }

    mutating func skip(wireType: UInt64) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1: index += 8
        case 2: _ = try lengthDelimited()
        case 5: index += 4
        default: throw Malformed()
        }
        guard index <= bytes.count else { throw Malformed() }
    }
}
