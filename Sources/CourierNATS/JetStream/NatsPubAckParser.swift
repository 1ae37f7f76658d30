import NIOCore

/// Reads a PubAck without `JSONDecoder`: every JetStream publish waits for one, and decoding it
/// through Foundation cost more than the rest of the publish. nats-server writes a PubAck as one
/// flat object, `{"stream":"ORDERS","seq":42}` (with `"duplicate":true` and `"domain":"…"` when
/// they apply); this reads exactly that shape and answers nil for anything else — an error
/// answer, an escape in a string, a nested value, a number out of range — so the caller falls
/// back to the full decoder, which reports the error. The fuzz target `nats-puback` checks that
/// whatever this reads, `JSONDecoder` reads the same.
package enum NatsPubAckParser {
    package static func parse(_ body: ByteBuffer) -> NatsPubAck? {
        body.withUnsafeReadableBytes { bytes in
            var reader = Reader(bytes: bytes)
            return reader.pubAck()
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func pubAck() -> NatsPubAck? {
            var stream: String?
            var sequence: UInt64?
            var duplicate = false
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            skipSpace()
            if take(UInt8(ascii: "}")) { return nil }
            var seen = Set<String>()
            repeat {
                skipSpace()
                guard let key = string(), seen.insert(key).inserted else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                switch key {
                case "stream":
                    guard let value = string() else { return nil }
                    stream = value
                case "seq":
                    guard let value = unsigned() else { return nil }
                    sequence = value
                case "duplicate":
                    guard let value = boolean() else { return nil }
                    duplicate = value
                case "domain":
                    guard string() != nil else { return nil }
                default:
                    // "error", or anything this reader does not know: the full decoder decides.
                    return nil
                }
                skipSpace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
            skipSpace()
            guard index == bytes.count, let stream, let sequence else { return nil }
            return NatsPubAck(stream: stream, sequence: sequence, duplicate: duplicate)
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// A string without escapes or control characters, as valid UTF-8.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\") || bytes[index] < 0x20 { return nil }
                index += 1
            }
            guard index < bytes.count else { return nil }
            let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return text
        }

        /// Digits only (no sign, fraction or exponent), no leading zero, within `UInt64`.
        mutating func unsigned() -> UInt64? {
            let start = index
            var value: UInt64 = 0
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (multiplied, overflow) = value.multipliedReportingOverflow(by: 10)
                let (added, carry) = multiplied.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow, !carry else { return nil }
                value = added
                index += 1
            }
            let digits = index - start
            guard digits > 0, !(digits > 1 && bytes[start] == UInt8(ascii: "0")) else { return nil }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) { return nil }
            return value
        }

        mutating func boolean() -> Bool? {
            if literal("true") { return true }
            if literal("false") { return false }
            return nil
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
            index += count
            return true
        }
    }
}
