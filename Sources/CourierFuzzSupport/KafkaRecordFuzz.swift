import Courier
import CourierKafka
import Logging
import NIOCore

/// Kafka records as Courier reads them (`KafkaIncoming.message`): the headers' bytes, the key, a
/// missing or present value, offset and timestamp, as any producer may send them. librdkafka
/// parses the wire; what Courier makes of the parts is what this checks.
///
/// Input: a flags byte (key present, value present, timestamp present), the offset and the
/// timestamp (8 bytes each), a key chunk, a header count, then per header a name chunk and a
/// value chunk, and the rest as the value. Invariants, besides not crashing: the body is the
/// value (empty and a tombstone when there is none); with every header value UTF-8 there is no
/// error and each header reads back as its last value; a value that is not UTF-8 makes the
/// message's envelope error, so decoding throws; the message id is the `message_id` header or
/// `"{offset}-{timestamp}"`; the content type is the header's, empty meaning none.
enum KafkaRecordFuzz {
    static let logger = Logger(label: "courier.fuzz.kafka", factory: { _ in SwiftLogNoOpLogHandler() })

    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        var reader = FuzzBytes(input)
        let flags = reader.byte()
        let offset = Int64(bitPattern: reader.bytes(8).reduce(0) { $0 << 8 | UInt64($1) })
        let timestampBytes = reader.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let key = flags & 1 != 0 ? reader.chunk(below: 64) : nil
        var headers: [(name: String, value: [UInt8])] = []
        for _ in 0..<(reader.int(below: 8)) {
            // librdkafka hands names over as C strings: no NUL, any other byte.
            let name = String(decoding: reader.chunk(below: 24).filter { $0 != 0 }, as: UTF8.self)
            headers.append((name, reader.chunk(below: 64)))
        }
        let rest = reader.rest()
        let value = flags & 2 != 0 ? ByteBuffer(bytes: rest) : nil
        let timestamp = flags & 4 != 0 ? Int64(bitPattern: timestampBytes) : nil
        let record = KafkaRecord(
            topic: "fuzz", partition: 0, offset: offset, timestampMilliseconds: timestamp, key: key, value: value, headers: headers
        )
        let message = KafkaIncoming.message(record, group: nil, logger: logger)

        try check.require(message.body.readableBytesView.elementsEqual(value.map { Array($0.readableBytesView) } ?? []), "the body is not the record's value")
        try check.require((try? message.kafka)?.isTombstone == (value == nil), "a tombstone is a record without a value, and only that")
        try check.require((try? message.kafka)?.key == key, "the key changed")
        let allUTF8 = headers.allSatisfy { String(validating: $0.value, as: UTF8.self) != nil }
        if allUTF8 {
            try check.require(message.envelopeError == nil, "valid headers gave an error")
            for (name, _) in headers {
                let last = headers.last { $0.name == name }!.value
                try check.require(message.headers[name] == String(decoding: last, as: UTF8.self), "header '\(name)' does not read back as its last value")
            }
        } else {
            try check.require(message.envelopeError != nil, "a header value that is not UTF-8 gave no error")
            do {
                _ = try message.decode(as: String.self)
                throw check.failure("a record with an unreadable header decoded")
            } catch is FuzzFailure {
                throw check.failure("a record with an unreadable header decoded")
            } catch {}
        }
        let expectedID = message.headers[MessageHeaderName.messageID] ?? "\(offset)-\(timestamp ?? 0)"
        try check.require(message.messageID == expectedID, "message id \(message.messageID ?? "nil") instead of \(expectedID)")
        let contentType = message.headers[MessageHeaderName.contentType]
        try check.require(message.contentType == ((contentType?.isEmpty ?? true) ? nil : contentType), "the content type is not the header's")
    }

    /// Records as producers send them: FastStream's headers, trace context, user headers, keys
    /// or none, values or tombstones, now and then a value that is not UTF-8.
    static func generate(_ random: inout FuzzRandom) -> [UInt8] {
        var headers: [([UInt8], [UInt8])] = [
            (Array("content-type".utf8), Array(["", "text/plain", "application/json"].randomElement(using: &random)!.utf8)),
            (Array("correlation_id".utf8), Array(random.string(12, from: "abcdef0123456789-").utf8)),
        ]
        if random.oneIn(2) { headers.append((Array("traceparent".utf8), Array("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".utf8))) }
        if random.oneIn(3) { headers.append((Array("message_id".utf8), Array(random.string(6, from: "0123456789").utf8))) }
        if random.oneIn(3) { headers.append((Array("x-user".utf8), random.oneIn(4) ? [0xFF, 0xFE] : Array("é ü 東".utf8))) }
        if random.oneIn(5) { headers.append((Array("content-type".utf8), Array("text/plain".utf8))) }
        return encode(
            key: random.oneIn(2) ? Array(random.string(8, from: "abc123").utf8) : nil,
            value: random.oneIn(5) ? nil : random.bytes(Int.random(in: 0..<32, using: &random)),
            offset: UInt64.random(in: 0..<1_000_000, using: &random),
            timestamp: random.oneIn(6) ? nil : UInt64.random(in: 1_600_000_000_000..<1_900_000_000_000, using: &random),
            headers: headers
        )
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        (0..<16).map { _ in generate(&random) }
    }

    /// The input for a record (chunks are a length byte and the bytes, as ``FuzzBytes`` reads them).
    static func encode(key: [UInt8]?, value: [UInt8]?, offset: UInt64, timestamp: UInt64?, headers: [([UInt8], [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = [(key != nil ? 1 : 0) | (value != nil ? 2 : 0) | (timestamp != nil ? 4 : 0)]
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: offset >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: (timestamp ?? 0) >> UInt64(shift))) }
        if let key { bytes += chunk(key, below: 64) }
        bytes += [UInt8(headers.count)]
        for (name, value) in headers { bytes += chunk(name, below: 24) + chunk(value, below: 64) }
        return bytes + (value ?? [])
    }

    private static func chunk(_ bytes: [UInt8], below maximum: Int) -> [UInt8] {
        [UInt8(bytes.count)] + bytes
    }
}
