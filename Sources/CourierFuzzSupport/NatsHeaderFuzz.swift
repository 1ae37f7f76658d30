import CCourierFuzz
import CNats
import Courier
import CourierNATS
import NIOCore

/// NATS headers as Courier gets them: nats.c reads the header block of an `HMSG` (the real
/// parser, fed through its wire constructor), Courier copies the result out and repairs what
/// nats.c 3.4 does to empty values (`NatsMessageSink.copy`, `repairingEmptyValues`).
///
/// The first byte picks one of three harnesses:
/// - raw: any bytes as header block and body. Besides not crashing: the body is the bytes after
///   the block, and an unreadable block gives a header error, never a half-read one;
/// - round trip: headers as FastStream (nats-py) writes them, `name: value` lines, empty values
///   included. What Courier reads back must be what was written, except when a value is shaped
///   like a swallowed line (`name:` or `name: …`, see ``isAmbiguous(_:)``), or a name begins
///   another (nats.c 3.4.1 may mix their values up), and except that nats.c refuses a block whose
///   last line is left with an empty value;
/// - repair: `repairingEmptyValues` on any headers. It may only empty a value with a colon and
///   add the header that value swallowed; without colons it changes nothing.
enum NatsHeaderFuzz {
    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        var reader = FuzzBytes(input)
        switch reader.byte() % 3 {
        case 0: try runRaw(&reader, check)
        case 1: try runRoundTrip(&reader, check)
        default: try runRepair(&reader, check)
        }
    }

    // MARK: - Raw header blocks

    /// A header length of this value means "up to the first blank line", so that mutations of
    /// the block keep it whole.
    static let headerLengthToBlankLine = 0xFFFF

    static func runRaw(_ reader: inout FuzzBytes, _ check: FuzzCheck) throws(FuzzFailure) {
        let hint = reader.int(below: 65536)
        let payload = reader.rest()
        let headerLength: Int
        if hint == headerLengthToBlankLine {
            let blank = Array("\r\n\r\n".utf8)
            headerLength = payload.indices.first { payload[$0...].starts(with: blank) }.map { $0 + 4 } ?? payload.count
        } else {
            headerLength = hint % (payload.count + 1)
        }
        let raw = try read(payload, headerLength: headerLength, check)
        try check.require(raw.body.readableBytesView.elementsEqual(payload[headerLength...]), "the body is not the bytes after the header block")
        if raw.headerError != nil {
            try check.require(raw.headers.isEmpty && raw.status == nil, "a header error came with headers")
        }
        if let code = raw.headers["Status"].flatMap({ Int($0.prefix(3)) }) {
            try check.require(raw.status == code, "status \(String(describing: raw.status)) for a Status header of \(code)")
        }
    }

    /// What Courier reads from an `HMSG` payload: a nats.c message made by the constructor nats.c's
    /// protocol parser uses, copied out as a subscription's callback does.
    static func read(_ payload: [UInt8], headerLength: Int, _ check: FuzzCheck) throws(FuzzFailure) -> NatsRawMessage {
        var message: OpaquePointer?
        let status = payload.withUnsafeBytes { bytes in
            courier_fuzz_nats_message_from_wire(
                &message,
                "fuzz",
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                Int32(bytes.count),
                Int32(headerLength)
            )
        }
        guard status == 0, let message else { throw check.failure("nats.c could not make a message: status \(status)") }
        defer { natsMsg_Destroy(message) }
        return NatsMessageSink.copy(message)
    }

    // MARK: - FastStream's headers, round trip

    /// Header names FastStream and Courier write, and a few more.
    static let names = ["correlation_id", "content-type", "reply_to", "message_id", "traceparent", "baggage", "Status", "Nats-Msg-Id", "x"]
    /// The characters of an HTTP token, which every writer keeps header names to.
    static let tokenBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".utf8)

    /// Headers read from the input: a count, then per header a name (an index into ``names`` or
    /// token bytes) and a value (printable ASCII; nats.c trims surrounding spaces, so they are
    /// trimmed here too). Names repeat at most once: nats.c keeps every value of a name, Courier
    /// the first, and that is not what this harness is about.
    static func readHeaders(_ reader: inout FuzzBytes) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for _ in 0..<reader.int(below: 8) {
            let choice = reader.int(below: 256)
            let name =
                choice < names.count
                ? names[choice]
                : String(decoding: reader.chunk(below: 16).filter { tokenBytes.contains($0) }, as: UTF8.self)
            let value = String(decoding: reader.chunk(below: 128).filter { (0x20...0x7E).contains($0) }, as: UTF8.self)
            guard !name.isEmpty, !headers.contains(where: { $0.name == name }) else { continue }
            headers.append((name, value.trimmingSpaces))
        }
        return headers
    }

    /// The input ``readHeaders(_:)`` reads as `headers` (round-trip mode).
    static func encodeRoundTrip(_ headers: [(name: String, value: String)]) -> [UInt8] {
        var bytes: [UInt8] = [1, UInt8(headers.count)]
        for (name, value) in headers {
            if let index = names.firstIndex(of: name) {
                bytes.append(UInt8(index))
            } else {
                bytes += [0xFF, UInt8(name.utf8.count)] + name.utf8
            }
            bytes += [UInt8(value.utf8.count)] + value.utf8
        }
        return bytes
    }

    /// The header block nats-py writes: `NATS/1.0`, then `name: value` lines, then a blank line.
    static func block(_ headers: [(name: String, value: String)]) -> [UInt8] {
        Array(("NATS/1.0\r\n" + headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n").utf8)
    }

    /// Whether nats.c 3.4 refuses the block: an empty value makes it read the next line as the
    /// value (the bug the repair undoes), so a chain of empty values that ends on the last line
    /// leaves that line without a value.
    static func natsRefuses(_ headers: [(name: String, value: String)]) -> Bool {
        var index = 0
        while index < headers.count {
            guard headers[index].value.isEmpty else {
                index += 1
                continue
            }
            if index == headers.count - 1 { return true }
            index += 2
        }
        return false
    }

    /// Whether `value` reads like a header line as nats.c swallows it (`name:` or `name: …`):
    /// from nats.c's result alone, nothing tells such a value from a swallowed line.
    static func isAmbiguous(_ value: String) -> Bool {
        guard let colon = value.firstIndex(of: ":") else { return false }
        let name = value[..<colon]
        let after = value[value.index(after: colon)...]
        return !name.isEmpty && !name.contains(" ") && (after.isEmpty || after.first == " ")
    }

    static func runRoundTrip(_ reader: inout FuzzBytes, _ check: FuzzCheck) throws(FuzzFailure) {
        let headers = readHeaders(&reader)
        let body = reader.rest()
        let header = block(headers)
        let raw = try read(header + body, headerLength: header.count, check)
        try check.require(raw.body.readableBytesView.elementsEqual(body), "the body changed")
        if natsRefuses(headers) {
            try check.require(raw.headerError != nil, "nats.c read a block it refuses: \(raw.headers)")
            return
        }
        try check.require(raw.headerError == nil, "the header block of \(headers) is unreadable: \(String(describing: raw.headerError))")
        if headers.contains(where: { isAmbiguous($0.value) }) { return }
        // nats.c 3.4.1 hashes some names alike when one begins the other (`trace` and `traceparent`)
        // and then compares only the length of the name looked up: the shorter name reads the
        // longer one's value, or is lost. Courier only sees nats.c's result and cannot undo that;
        // such blocks are read (above), not compared.
        let names = headers.map(\.name)
        if names.contains(where: { name in names.contains { $0 != name && $0.hasPrefix(name) } }) { return }
        let written = Dictionary(uniqueKeysWithValues: headers.map { ($0.name, $0.value) })
        let read = Dictionary(raw.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        try check.require(read == written, "wrote \(written), read \(read)")
    }

    // MARK: - The repair alone

    static func runRepair(_ reader: inout FuzzBytes, _ check: FuzzCheck) throws(FuzzFailure) {
        var headers = MessageHeaders()
        for _ in 0..<reader.int(below: 8) {
            headers[String(decoding: reader.chunk(below: 32), as: UTF8.self)] = String(decoding: reader.chunk(below: 64), as: UTF8.self)
        }
        let repaired = repairingEmptyValues(headers)
        if !headers.contains(where: { $0.value.contains(":") }) {
            try check.require(repaired == headers, "headers without a colon changed: \(headers) → \(repaired)")
            return
        }
        try check.require(repaired.count <= 2 * headers.count, "\(headers.count) headers became \(repaired.count)")
        for (name, value) in headers {
            guard let now = repaired[name] else { throw check.failure("the repair lost header '\(name)'") }
            try check.require(now == value || (now.isEmpty && value.contains(":")), "the repair changed '\(name)': '\(value)' → '\(now)'")
        }
        for (name, _) in repaired where headers[name] == nil {
            try check.require(
                headers.contains { $0.value.hasPrefix(name + ":") },
                "the repair added '\(name)', which no value swallowed"
            )
        }
    }

    // MARK: - Generating headers

    /// Headers as FastStream writes them over NATS: its own (content-type left empty for raw
    /// bytes), trace context, and values with colons in them.
    static func randomHeaders(_ random: inout FuzzRandom) -> [(name: String, value: String)] {
        let values = ["", "", "application/json", "text/plain", "http://example.com:8080/x", "urn:uuid:1234", "a:b", "12:00 UTC", "c-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v", "503"]
        var headers: [(name: String, value: String)] = []
        for _ in 0..<Int.random(in: 0...6, using: &random) {
            let name = random.oneIn(4) ? random.string(Int.random(in: 1...6, using: &random), from: "abXY-_.09") : names.randomElement(using: &random)!
            let value = random.oneIn(5) ? random.string(Int.random(in: 1...12, using: &random), from: "ab:/ -=09") : values.randomElement(using: &random)!
            guard !headers.contains(where: { $0.name == name }) else { continue }
            headers.append((name, value.trimmingSpaces))
        }
        return headers
    }

    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let headers = randomHeaders(&random)
        let bytes = encodeRoundTrip(headers) + random.bytes(Int.random(in: 0...8, using: &random))
        var reader = FuzzBytes(bytes)
        _ = reader.byte()
        let read = readHeaders(&reader)
        try FuzzCheck(target: .natsHeaders, input: bytes).require(
            read.map(\.name) == headers.map(\.name) && read.map(\.value) == headers.map(\.value),
            "generated headers \(headers) encode as \(read)"
        )
        return bytes
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let hint: [UInt8] = [0xFF, 0xFF]
        let blocks = [
            "NATS/1.0\r\ncorrelation_id: c-1\r\ncontent-type: \r\nreply_to: _INBOX.x\r\n\r\nbody",
            "NATS/1.0 503\r\n\r\n", "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n",
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n",
            "NATS/1.0\r\nk: v\r\n folded\r\nk: second\r\n\r\n",
        ]
        let raw = blocks.map { [0] + hint + Array($0.utf8) }
        let repair: [[UInt8]] = [[2, 2, 1, UInt8(ascii: "a"), 4] + Array("b: c".utf8) + [1, UInt8(ascii: "d"), 0]]
        return raw + repair + (0..<16).compactMap { _ in try? generate(&random) }
    }
}

extension String {
    /// Without leading and trailing spaces, as nats.c reads a value.
    fileprivate var trimmingSpaces: String {
        var trimmed = Substring(self)
        while trimmed.first == " " { trimmed.removeFirst() }
        while trimmed.last == " " { trimmed.removeLast() }
        return String(trimmed)
    }
}
