import Courier

/// `TraceParent.isWellFormed`: any text (invalid UTF-8 read with replacement characters, as a
/// header value would be), judged the same as by ``reference(_:)``, a second reading of the W3C
/// rule written over dash-separated fields instead of fixed offsets.
enum TraceParentFuzz {
    static let lowerHexDigits = Set("0123456789abcdef".utf8)

    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        let value = String(decoding: input, as: UTF8.self)
        let verdict = TraceParent.isWellFormed(value)
        try check.require(verdict == reference(value), "isWellFormed says \(verdict) for '\(value)', the reference the opposite")
    }

    /// W3C Trace Context, level 1: `version-traceid-parentid-flags`, lower-case hex of 2, 32, 16
    /// and 2 digits; version `ff` and all-zero ids are invalid; version `00` has exactly these four
    /// fields, a later version may follow them with `-` and more.
    static func reference(_ value: String) -> Bool {
        let fields = value.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard fields.count >= 4 else { return false }
        func isHex(_ field: Substring.UTF8View, digits: Int) -> Bool {
            field.count == digits && field.allSatisfy { lowerHexDigits.contains($0) }
        }
        func isZero(_ field: Substring.UTF8View) -> Bool { field.allSatisfy { $0 == UInt8(ascii: "0") } }
        let version = fields[0]
        guard isHex(version, digits: 2), !version.elementsEqual("ff".utf8),
            isHex(fields[1], digits: 32), !isZero(fields[1]),
            isHex(fields[2], digits: 16), !isZero(fields[2]),
            isHex(fields[3], digits: 2)
        else { return false }
        return fields.count == 4 || !version.elementsEqual("00".utf8)
    }

    static func randomHex(_ digits: Int, _ random: inout FuzzRandom) -> String {
        random.string(digits, from: "0123456789abcdef")
    }

    /// A well-formed `traceparent`: version 00, or a later one with extra fields.
    static func validTraceparent(_ random: inout FuzzRandom) -> String {
        var trace = randomHex(32, &random)
        var parent = randomHex(16, &random)
        // All zeros is invalid; the odds of drawing it are nil, but a generator must not depend on odds.
        if trace.allSatisfy({ $0 == "0" }) { trace = "1" + trace.dropFirst() }
        if parent.allSatisfy({ $0 == "0" }) { parent = "1" + parent.dropFirst() }
        let flags = random.oneIn(2) ? "01" : randomHex(2, &random)
        guard random.oneIn(4) else { return "00-\(trace)-\(parent)-\(flags)" }
        var version = randomHex(2, &random)
        if version == "ff" || version == "00" { version = "cc" }
        let extra = random.oneIn(2) ? "" : "-" + random.string(Int.random(in: 0...8, using: &random), from: "abc-09")
        return "\(version)-\(trace)-\(parent)-\(flags)\(extra)"
    }

    static func generate(_ random: inout FuzzRandom) -> [UInt8] {
        var value = Array(validTraceparent(&random).utf8)
        // Near misses are where such a check goes wrong: one byte off, one byte more or less.
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            value[Int.random(in: 0..<value.count, using: &random)] = Array("0fF-gx \u{7F}".utf8).randomElement(using: &random)!
        case 1:
            value.remove(at: Int.random(in: 0..<value.count, using: &random))
        case 2:
            value.insert(Array("0a-".utf8).randomElement(using: &random)!, at: Int.random(in: 0...value.count, using: &random))
        case 3:
            value = Array(String(decoding: value, as: UTF8.self).uppercased().utf8)
        default:
            break
        }
        return value
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let fixed = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-401e1d9c500eb0ae17d208c9fecb9029-65d70adf366ae89b-03",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ]
        return fixed.map { Array($0.utf8) } + (0..<16).map { _ in Array(validTraceparent(&random).utf8) }
    }
}

/// `Baggage.parse(header:)`: any text. Invariants, besides not crashing: at most 180 members are
/// read, a header past 8192 bytes is refused whole, and what was read, rendered again with
/// `headerValue`, parses back to the same baggage with nothing malformed.
enum BaggageFuzz {
    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        let header = String(decoding: input, as: UTF8.self)
        let (baggage, malformed) = Baggage.parse(header: header)
        if header.utf8.count > 8192 {
            try check.require(baggage.isEmpty && malformed == 1, "an oversized header was read")
            return
        }
        try check.require(malformed >= 0 && baggage.count + malformed <= 180, "\(baggage.count) entries and \(malformed) malformed members from at most 180")
        let rendered = baggage.headerValue
        try check.require(
            rendered.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F },
            "the rendered header '\(rendered)' holds bytes outside printable ASCII"
        )
        // Percent-encoding triples a byte: what was read near the limit may render past it.
        guard rendered.utf8.count <= 8192 else { return }
        let again = Baggage.parse(header: rendered)
        try check.require(
            again.baggage == baggage && again.malformedMembers == 0,
            "\(baggage.dictionary) renders as '\(rendered)', which parses as \(again.baggage.dictionary) with \(again.malformedMembers) malformed"
        )
    }

    /// `text` percent-encoded in one of the ways other propagators write it: some safe bytes
    /// left as they are, lower- or upper-case hex, `+` or `%20` for a space.
    static func encode(_ text: String, isKey: Bool, _ random: inout FuzzRandom) -> String {
        var output = ""
        for byte in text.utf8 {
            let mustEncode =
                byte <= 0x20 || byte >= 0x7F
                || [UInt8(ascii: "\""), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "\\"), UInt8(ascii: "%"), UInt8(ascii: "+")].contains(byte)
                || (isKey && byte == UInt8(ascii: "="))
            if byte == UInt8(ascii: " "), random.oneIn(2) {
                output += "+"
            } else if mustEncode || random.oneIn(8) {
                let hex = String(byte, radix: 16, uppercase: random.oneIn(2))
                output += "%" + (byte < 16 ? "0" : "") + hex
            } else {
                output.unicodeScalars.append(UnicodeScalar(byte))
            }
        }
        return output
    }

    static func randomBaggage(_ random: inout FuzzRandom) -> Baggage {
        var entries: [String: String] = [:]
        let alphabet = "abcXYZ019-_.~ +%=,;\"\\/:\u{e9}\u{1F600}\t"
        for _ in 0..<Int.random(in: 0...6, using: &random) {
            let key = random.oneIn(2) ? ["tenant", "user.id", "with_batch", "k"].randomElement(using: &random)! : random.string(Int.random(in: 1...10, using: &random), from: alphabet)
            entries[key] = random.string(Int.random(in: 0...12, using: &random), from: alphabet)
        }
        return Baggage(entries)
    }

    /// A header for a random baggage, written with optional whitespace, properties and empty
    /// members, checked to parse back to that baggage with nothing malformed.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let baggage = randomBaggage(&random)
        func space(_ random: inout FuzzRandom) -> String { random.oneIn(3) ? [" ", "\t", "  "].randomElement(using: &random)! : "" }
        var members: [String] = []
        // In key order: a dictionary's order changes from one process to the next, the inputs must not.
        for (key, value) in baggage.sorted(by: { $0.key < $1.key }) {
            var member = space(&random) + encode(key, isKey: true, &random) + space(&random) + "=" + space(&random) + encode(value, isKey: false, &random) + space(&random)
            if random.oneIn(4) { member += ";" + ["prop", "p=1", "ttl=30;x"].randomElement(using: &random)! }
            members.append(member)
            if random.oneIn(6) { members.append(space(&random)) }
        }
        let header = members.joined(separator: ",")
        let parsed = Baggage.parse(header: header)
        let check = FuzzCheck(target: .baggage, input: Array(header.utf8))
        try check.require(
            parsed.baggage == baggage && parsed.malformedMembers == 0,
            "\(baggage.dictionary) written as '\(header)' parses as \(parsed.baggage.dictionary) with \(parsed.malformedMembers) malformed"
        )
        try check.require(Baggage.parse(header: baggage.headerValue).baggage == baggage, "\(baggage.dictionary) does not survive its own rendering")
        return Array(header.utf8)
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let fixed = [
            "userId=alice,serverNode=DF%2028,isProduction=false", "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
            "k=a+b%2Cc, n=1,u=%C3%BC;prop=1,broken,=x", "with_batch=1", "tenant=acme", "",
        ]
        return fixed.map { Array($0.utf8) } + (0..<16).compactMap { _ in try? generate(&random) }
    }
}
