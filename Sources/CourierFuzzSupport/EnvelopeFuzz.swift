import Courier
import CourierRedis
import Foundation
import NIOCore

/// The FastStream envelope reader (`RedisEnvelope.decode`): any bytes, read from a buffer that
/// does not start at index 0 (as a slice of a reply does).
///
/// Invariants, besides not crashing:
/// - only a value that starts with the binary magic may be rejected, and only with
///   `RedisEnvelope.DecodingError`;
/// - a binary envelope's body is the tail of the value;
/// - a value that is neither binary nor a JSON object is a plain payload: no headers, all body;
/// - what was read, written again in the binary format, reads back the same.
enum EnvelopeFuzz {
    static let magic: [UInt8] = [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A]

    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        // Some junk in front, skipped by the reader index: offsets must count from the value's start.
        let junk = Int(fingerprint(input) % 5)
        var value = ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: junk) + input)
        value.moveReaderIndex(forwardBy: junk)
        let isBinary = input.starts(with: magic)
        let envelope: RedisEnvelope
        do {
            envelope = try RedisEnvelope.decode(value)
        } catch is RedisEnvelope.DecodingError {
            try check.require(isBinary, "a value without the binary magic was rejected")
            return
        } catch {
            throw check.failure("the reader threw \(type(of: error)), not a DecodingError: \(error)")
        }
        if isBinary {
            try check.require(
                input.suffix(envelope.body.readableBytes).elementsEqual(envelope.body.readableBytesView),
                "a binary envelope's body is not the tail of the value"
            )
        } else if input.first != UInt8(ascii: "{") {
            try check.require(envelope.headers.isEmpty && envelope.body == value, "a plain payload did not read as itself")
        }
        try requireRoundTrip(envelope, check)
    }

    /// `envelope` written in the binary format reads back as itself.
    static func requireRoundTrip(_ envelope: RedisEnvelope, _ check: FuzzCheck) throws(FuzzFailure) {
        let again = try check.mustSucceed("writing and reading again an envelope that was read") {
            try RedisEnvelope.decode(envelope.encode(allocator: ByteBufferAllocator()))
        }
        try check.require(
            again.headers == envelope.headers && again.body == envelope.body,
            "headers \(envelope.headers) read back as \(again.headers), or the body changed"
        )
    }

    // MARK: - Generating envelopes

    static func randomHeaders(_ random: inout FuzzRandom) -> MessageHeaders {
        let names = ["correlation_id", "content-type", "reply_to", "message_id", "traceparent", "baggage", "x-\u{e9}"]
        var headers = MessageHeaders()
        for _ in 0..<Int.random(in: 0...5, using: &random) {
            let name = random.oneIn(3) ? random.string(Int.random(in: 1...8, using: &random), from: "abz-_:\u{1F600}") : names.randomElement(using: &random)!
            headers[name] = random.string(Int.random(in: 0...20, using: &random), from: "ab09 -:/\"\\{}\u{e9}\n")
        }
        return headers
    }

    /// An envelope in one of the three forms, checked against what it was made from.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let headers = randomHeaders(&random)
        let body = random.bytes(Int.random(in: 0...40, using: &random))
        let bytes: [UInt8]
        let expected: RedisEnvelope
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            expected = RedisEnvelope(headers: headers, body: ByteBuffer(bytes: body))
            let written = try FuzzCheck(target: .envelope, input: body).mustSucceed("writing a small envelope") {
                try expected.encode(allocator: ByteBufferAllocator())
            }
            bytes = Array(written.readableBytesView)
        case 1:
            // FastStream's legacy JSON: the body as a string, headers sorted by name when read.
            let data = random.string(Int.random(in: 0...20, using: &random), from: "ab {}\"\\\n\u{e9}")
            let fields = Dictionary(headers.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
            let withHeaders = !random.oneIn(4)
            let object: [String: Any] = withHeaders ? ["data": data, "headers": fields] : ["data": data]
            bytes = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
            let read = withHeaders ? MessageHeaders(fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) : [:]
            expected = RedisEnvelope(headers: read, body: ByteBuffer(string: data))
        default:
            // A plain payload: anything that is neither binary nor a JSON object.
            bytes = body.first == UInt8(ascii: "{") || body.first == 0x89 ? [0x20] + body : body
            expected = RedisEnvelope(headers: [:], body: ByteBuffer(bytes: bytes))
        }
        let check = FuzzCheck(target: .envelope, input: bytes)
        let read = try check.mustSucceed("reading a generated envelope") { try RedisEnvelope.decode(ByteBuffer(bytes: bytes)) }
        try check.require(
            read.headers == expected.headers && read.body == expected.body,
            "read \(read.headers) and \(read.body.readableBytes) bytes, wrote \(expected.headers) and \(expected.body.readableBytes)"
        )
        return bytes
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let legacy = [
            #"{"data":"{\"a\":1}","headers":{"correlation_id":"cid","content-type":"application/json"}}"#,
            #"{"data":"hello"}"#, #"{"data":"x","headers":{"n":1,"b":true,"o":{"k":[1,2]},"z":null}}"#, #"{"a":1}"#, "plain text",
        ]
        return legacy.map { Array($0.utf8) } + (0..<24).compactMap { _ in try? generate(&random) }
    }
}
