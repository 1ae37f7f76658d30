import CourierRedis
import NIOCore
import NIOEmbedded

/// The RESP decoder: any bytes, decoded as one buffer and as a socket delivers them (split at
/// chosen points into a `ByteToMessageHandler`; short inputs also a byte at a time), with the
/// default limits and with tight ones.
///
/// Invariants, besides not crashing:
/// - a protocol error is a thrown `RESPProtocolError`, and nothing of the value is consumed;
/// - every step agrees with ``RESPReference``, a second reading of the framing written without
///   recursion: same end of each value, the same incomplete tails, the same rejections
///   (limits, nesting and malformed lines included);
/// - the values and the error are the same however the bytes are split;
/// - a decoded value, written out again, decodes to itself.
enum RESPFuzz {
    /// Limits small enough that short inputs reach every one of them.
    static let tightLimits: RESPDecoder.Limits = {
        var limits = RESPDecoder.Limits()
        limits.maxBulkLength = 48
        limits.maxElements = 6
        limits.maxDepth = 4
        limits.maxLineLength = 24
        return limits
    }()

    /// For decoding what ``encode(_:)`` wrote: it only ever shortens nesting, but a line read with
    /// invalid UTF-8 comes back longer (each bad byte becomes a three-byte U+FFFD).
    static let rereadLimits: RESPDecoder.Limits = {
        var limits = RESPDecoder.Limits()
        limits.maxLineLength = 1 << 24
        return limits
    }()

    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        var random = FuzzRandom(seed: fingerprint(input))
        for limits in [RESPDecoder.Limits(), tightLimits] {
            let whole = try decodeWhole(input, limits: limits, check)
            func requireSame(_ split: Decoded, _ how: String) throws(FuzzFailure) {
                try check.require(
                    split.failed == whole.failed && split.values.count == whole.values.count
                        && zip(split.values, whole.values).allSatisfy { equivalent($0, $1) },
                    "\(how) the decoder gave \(split.values.count) values (failed: \(split.failed)), "
                        + "whole \(whole.values.count) (failed: \(whole.failed))"
                )
            }
            guard input.count > 1 else { continue }
            // A few reads of random sizes, through NIO's handler as a channel would run it: for a
            // third of the inputs, as their fingerprint picks (a channel is the costly part of a run).
            let cuts = Set((0..<Int.random(in: 1...4, using: &random)).map { _ in Int.random(in: 1..<input.count, using: &random) }).sorted()
            if random.oneIn(3) {
                try requireSame(try decodeInChannel(input, cuts: cuts, limits: limits, check), "split at \(cuts)")
            }
            // Every byte its own read, straight into the decoder, as the handler would pass it on.
            if input.count <= 24 { try requireSame(try decodeByteByByte(input, limits: limits, check), "byte by byte") }
        }
    }

    struct Decoded {
        var values: [RESPValue] = []
        var failed = false
    }

    /// Every value in `input`, one `RESPDecoder.parse` after the other, each step checked against
    /// the reference framing and the round trip.
    static func decodeWhole(_ input: [UInt8], limits: RESPDecoder.Limits, _ check: FuzzCheck) throws(FuzzFailure) -> Decoded {
        var buffer = ByteBuffer(bytes: input)
        var decoded = Decoded()
        while true {
            let start = buffer.readerIndex
            let expected = RESPReference.frame(input, from: start, limits: limits)
            let value: RESPValue?
            do {
                value = try RESPDecoder.parse(&buffer, limits: limits)
            } catch is RESPProtocolError {
                try check.require(buffer.readerIndex == start, "a rejected value consumed \(buffer.readerIndex - start) bytes")
                try check.require(expected == .invalid, "the decoder rejected at \(start) what the reference reads as \(expected)")
                decoded.failed = true
                return decoded
            } catch {
                throw check.failure("the decoder threw \(type(of: error)), not a RESPProtocolError: \(error)")
            }
            guard let value else {
                try check.require(buffer.readerIndex == start, "an incomplete value consumed bytes")
                try check.require(expected == .incomplete, "the decoder waits at \(start) for more where the reference reads \(expected)")
                return decoded
            }
            try check.require(
                expected == .complete(end: buffer.readerIndex),
                "the decoder read a value over \(start)..<\(buffer.readerIndex) where the reference reads \(expected)"
            )
            var written = ByteBuffer(bytes: encode(value))
            let reread = try check.mustSucceed("reading \(value) written out") { try RESPDecoder.parse(&written, limits: rereadLimits) }
            try check.require(
                reread.map { equivalent($0, value) } == true && written.readableBytes == 0,
                "\(value) written out reads back as \(String(describing: reread))"
            )
            decoded.values.append(value)
        }
    }

    /// Feeds `input` to a `ByteToMessageHandler` in the pieces `cuts` mark, as reads from a socket.
    static func decodeInChannel(
        _ input: [UInt8],
        cuts: [Int],
        limits: RESPDecoder.Limits,
        _ check: FuzzCheck
    ) throws(FuzzFailure) -> Decoded {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder(limits: limits)))
        var decoded = Decoded()
        var start = 0
        do {
            for end in cuts + [input.count] where end > start {
                do {
                    try channel.writeInbound(ByteBuffer(bytes: input[start..<end]))
                } catch is RESPProtocolError {
                    decoded.failed = true
                }
                while let value = try channel.readInbound(as: RESPValue.self) { decoded.values.append(value) }
                start = end
                if decoded.failed { break }
            }
            // Closing runs decodeLast over what is left: it must find nothing more.
            if case .leftOvers(let inbound, _, _) = try channel.finish(acceptAlreadyClosed: true) {
                try check.require(inbound.isEmpty, "closing the channel decoded \(inbound.count) more values")
            }
        } catch let failure as FuzzFailure {
            throw failure
        } catch {
            throw check.failure("the channel failed with \(type(of: error)): \(error)")
        }
        return decoded
    }

    /// Feeds `input` to the decoder a byte at a time, as `ByteToMessageHandler` does: one buffer
    /// that grows with each read and is parsed again from the start of the pending value.
    static func decodeByteByByte(_ input: [UInt8], limits: RESPDecoder.Limits, _ check: FuzzCheck) throws(FuzzFailure) -> Decoded {
        var buffer = ByteBuffer()
        var decoded = Decoded()
        for byte in input {
            buffer.writeInteger(byte)
            do {
                while let value = try RESPDecoder.parse(&buffer, limits: limits) { decoded.values.append(value) }
            } catch is RESPProtocolError {
                decoded.failed = true
                return decoded
            } catch {
                throw check.failure("the decoder threw \(type(of: error)), not a RESPProtocolError: \(error)")
            }
        }
        return decoded
    }

    /// Equality, except that NaN equals NaN (`,nan` decodes to one).
    static func equivalent(_ left: RESPValue, _ right: RESPValue) -> Bool {
        switch (left, right) {
        case (.double(let a), .double(let b)):
            return a == b || (a.isNaN && b.isNaN)
        case (.array(let a), .array(let b)), (.set(let a), .set(let b)), (.push(let a), .push(let b)), (.map(let a), .map(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equivalent($0, $1) }
        default:
            return left == right
        }
    }

    // MARK: - Writing values

    /// `value` in RESP3, one way of the several the decoder accepts.
    static func encode(_ value: RESPValue) -> [UInt8] {
        var bytes: [UInt8] = []
        write(value, into: &bytes)
        return bytes
    }

    private static func write(_ value: RESPValue, into bytes: inout [UInt8]) {
        func line(_ marker: Character, _ text: some Sequence<UInt8>) {
            bytes.append(marker.asciiValue!)
            bytes.append(contentsOf: text)
            bytes.append(contentsOf: [0x0D, 0x0A])
        }
        func blob(_ marker: Character, _ body: [UInt8]) {
            line(marker, String(body.count).utf8)
            bytes.append(contentsOf: body)
            bytes.append(contentsOf: [0x0D, 0x0A])
        }
        func aggregate(_ marker: Character, _ count: Int, _ elements: [RESPValue]) {
            line(marker, String(count).utf8)
            for element in elements { write(element, into: &bytes) }
        }
        switch value {
        case .simpleString(let text): line("+", text.readableBytesView)
        // A line cannot hold a line feed; a blob error can hold anything.
        case .error(let text) where text.utf8.contains(0x0A): blob("!", Array(text.utf8))
        case .error(let text): line("-", text.utf8)
        case .integer(let number): line(":", String(number).utf8)
        case .bulkString(let body): blob("$", Array(body.readableBytesView))
        case .null: line("_", [UInt8]())
        case .double(let number) where number.isNaN: line(",", "nan".utf8)
        case .double(let number) where number.isInfinite: line(",", (number < 0 ? "-inf" : "inf").utf8)
        case .double(let number): line(",", String(number).utf8)
        case .boolean(let flag): line("#", (flag ? "t" : "f").utf8)
        case .bigNumber(let digits): line("(", digits.utf8)
        case .array(let elements): aggregate("*", elements.count, elements)
        case .set(let elements): aggregate("~", elements.count, elements)
        case .push(let elements): aggregate(">", elements.count, elements)
        case .map(let elements): aggregate("%", elements.count / 2, elements)
        }
    }

    // MARK: - Generating values

    /// A valid value and one of its wire forms (RESP2 or RESP3 nulls, verbatim strings, blob
    /// errors, attributes in front), with what the decoder must read from it.
    static func generateValue(_ random: inout FuzzRandom, depth: Int = 0) -> (bytes: [UInt8], value: RESPValue) {
        var bytes: [UInt8] = []
        // An attribute in front (RESP3 `|`): the decoder drops it; it nests the value one level.
        if depth < 2, random.oneIn(10) {
            let pairs = Int.random(in: 0...2, using: &random)
            bytes.append(contentsOf: Array("|\(pairs)\r\n".utf8))
            for _ in 0..<(2 * pairs) { bytes.append(contentsOf: generateValue(&random, depth: depth + 1).bytes) }
            let annotated = generateValue(&random, depth: depth + 1)
            return (bytes + annotated.bytes, annotated.value)
        }
        let lineSafe = "abcXYZ019 _-:.,/\r\u{e9}\u{1F600}"
        // Aggregates down to the third level: deep enough for every path, small enough to run fast.
        let choice = Int.random(in: 0..<(depth >= 2 ? 9 : 13), using: &random)
        switch choice {
        case 0:
            let text = random.string(Int.random(in: 0...12, using: &random), from: lineSafe)
            // A line's last byte before CRLF may itself be CR, but nothing may follow a CR as LF.
            return (Array("+\(text)\r\n".utf8), .simpleString(ByteBuffer(string: text)))
        case 1:
            let text = random.string(Int.random(in: 0...12, using: &random), from: lineSafe + "\n")
            if text.utf8.contains(0x0A) || random.oneIn(2) {
                return (Array("!\(text.utf8.count)\r\n\(text)\r\n".utf8), .error(text))
            }
            return (Array("-\(text)\r\n".utf8), .error(text))
        case 2:
            let number = random.oneIn(4) ? [Int64.min, Int64.max, 0, -1].randomElement(using: &random)! : Int64.random(in: -100_000...100_000, using: &random)
            let text = number >= 0 && random.oneIn(4) ? "+\(number)" : "\(number)"
            return (Array(":\(text)\r\n".utf8), .integer(number))
        case 3:
            let body = random.bytes(Int.random(in: 0...24, using: &random))
            if random.oneIn(3) {
                return (Array("=\(body.count + 4)\r\ntxt:".utf8) + body + [0x0D, 0x0A], .bulkString(ByteBuffer(bytes: body)))
            }
            return (Array("$\(body.count)\r\n".utf8) + body + [0x0D, 0x0A], .bulkString(ByteBuffer(bytes: body)))
        case 4:
            return (Array(["_\r\n", "$-1\r\n", "*-1\r\n", "%-1\r\n", "=-1\r\n", "|-1\r\n"].randomElement(using: &random)!.utf8), .null)
        case 5:
            let special: [(String, Double)] = [("inf", .infinity), ("-inf", -.infinity), ("nan", .nan), ("1e3", 1000), ("-0.5", -0.5), ("0x1p-2", 0.25)]
            if random.oneIn(3) {
                let (text, number) = special.randomElement(using: &random)!
                return (Array(",\(text)\r\n".utf8), .double(number))
            }
            let number = Double.random(in: -1e6...1e6, using: &random)
            return (Array(",\(number)\r\n".utf8), .double(number))
        case 6:
            let flag = Bool.random(using: &random)
            return (Array("#\(flag ? "t" : "f")\r\n".utf8), .boolean(flag))
        case 7:
            let digits = (random.oneIn(2) ? "-" : "") + random.string(Int.random(in: 1...40, using: &random), from: "0123456789")
            return (Array("(\(digits)\r\n".utf8), .bigNumber(digits))
        case 8:
            return (Array(":0\r\n".utf8), .integer(0))
        default:
            let markers: [Character] = ["*", "~", ">", "%"]
            let marker = markers[choice - 9]
            let declared = Int.random(in: 0...(marker == "%" ? 2 : 3), using: &random)
            let count = marker == "%" ? declared * 2 : declared
            bytes.append(contentsOf: Array("\(marker)\(declared)\r\n".utf8))
            var elements: [RESPValue] = []
            for _ in 0..<count {
                let element = generateValue(&random, depth: depth + 1)
                bytes.append(contentsOf: element.bytes)
                elements.append(element.value)
            }
            let value: RESPValue =
                switch marker {
                case "~": .set(elements)
                case ">": .push(elements)
                case "%": .map(elements)
                default: .array(elements)
                }
            return (bytes, value)
        }
    }

    /// One to three generated values back to back, checked: read whole they are the values
    /// generated; cut in two anywhere, the first piece is incomplete and the whole then reads the same.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let values = (0..<Int.random(in: 1...3, using: &random)).map { _ in generateValue(&random) }
        let bytes = values.flatMap(\.bytes)
        let check = FuzzCheck(target: .resp, input: bytes)
        var whole = ByteBuffer(bytes: bytes)
        var read: [RESPValue] = []
        try check.mustSucceed("reading generated values \(values.map(\.value))") {
            while let value = try RESPDecoder.parse(&whole) { read.append(value) }
        }
        try check.require(
            read.count == values.count && zip(read, values.map(\.value)).allSatisfy { equivalent($0, $1) },
            "generated values \(values.map(\.value)) read as \(read)"
        )
        let first = values[0]
        // Every point of a short value, a few of a long one (the smoke test cuts 100 values everywhere).
        let points = first.bytes.count <= 16 ? Array(1..<first.bytes.count) : (0..<4).map { _ in Int.random(in: 1..<first.bytes.count, using: &random) }
        for point in points {
            var buffer = ByteBuffer(bytes: first.bytes[..<point])
            let early = try check.mustSucceed("reading the first \(point) bytes of \(first.value)") { try RESPDecoder.parse(&buffer) }
            try check.require(early == nil, "the first \(point) bytes of \(first.value) already read as \(String(describing: early))")
            buffer.writeBytes(first.bytes[point...])
            let late = try check.mustSucceed("reading \(first.value) split at \(point)") { try RESPDecoder.parse(&buffer) }
            try check.require(late.map { equivalent($0, first.value) } == true, "\(first.value) split at \(point) reads as \(String(describing: late))")
        }
        return bytes
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        let replies = [
            "+OK\r\n", "-ERR unknown command\r\n", ":1000\r\n", "$5\r\nhello\r\n", "$0\r\n\r\n", "$-1\r\n", "*-1\r\n",
            "*3\r\n$7\r\nmessage\r\n$6\r\norders\r\n$5\r\nhello\r\n",
            ">3\r\n$7\r\nmessage\r\n$6\r\norders\r\n$5\r\nhello\r\n",
            "%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n",
            "*1\r\n*2\r\n$6\r\norders\r\n*1\r\n*2\r\n$15\r\n1700000000000-0\r\n*2\r\n$4\r\ndata\r\n$2\r\nhi\r\n",
            "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039\r\n:9543\r\n",
            "=15\r\ntxt:Some string\r\n", "!21\r\nSYNTAX invalid syntax\r\n", ",1.23\r\n", ",inf\r\n", ",-nan\r\n",
            "(3492890328409238509324850943850943825024385\r\n", "#t\r\n", "#f\r\n", "_\r\n", "~2\r\n+a\r\n+b\r\n",
            "+OK\r\n:1\r\n$3\r\nabc\r\n",
        ]
        return replies.map { Array($0.utf8) } + (0..<24).map { _ in generateValue(&random).bytes }
    }
}

/// A second reading of RESP framing, independent of the decoder: a loop over plain bytes with an
/// explicit stack of what each open aggregate still owes, where the decoder recurses over
/// `ByteBuffer`s. It applies the same limits, and counts an attribute as one level of nesting
/// for the value it annotates, as it does for the elements of an aggregate.
enum RESPReference {
    enum Outcome: Equatable, CustomStringConvertible {
        case complete(end: Int)
        case incomplete
        case invalid

        var description: String {
            switch self {
            case .complete(let end): "a value ending at \(end)"
            case .incomplete: "an incomplete value"
            case .invalid: "an invalid value"
            }
        }
    }

    static func frame(_ bytes: [UInt8], from start: Int, limits: RESPDecoder.Limits) -> Outcome {
        // For each open aggregate (or attribute), how many values it still owes.
        var owed: [Int] = []
        var position = start
        while true {
            guard position < bytes.count else { return .incomplete }
            let marker = Character(UnicodeScalar(bytes[position]))
            let lineStart = position + 1
            guard let newline = bytes[lineStart...].firstIndex(of: 0x0A) else {
                // What arrived of the line may end in the CR of its CRLF, which is not the line's.
                let pending = bytes.count - lineStart - (bytes.last == 0x0D && bytes.count > lineStart ? 1 : 0)
                return pending > limits.maxLineLength ? .invalid : .incomplete
            }
            guard newline > lineStart, bytes[newline - 1] == 0x0D, newline - 1 - lineStart <= limits.maxLineLength else { return .invalid }
            let text = String(decoding: bytes[lineStart..<(newline - 1)], as: UTF8.self)
            position = newline + 1
            var opens = 0
            switch marker {
            case "+", "-", "_", "(":
                break
            case ":":
                guard Int64(text) != nil else { return .invalid }
            case "#":
                guard text == "t" || text == "f" else { return .invalid }
            case ",":
                guard ["inf", "-inf", "nan"].contains(text) || Double(text) != nil else { return .invalid }
            case "$", "=", "!":
                guard let length = Int(text), length >= (marker == "!" ? 0 : -1), length <= limits.maxBulkLength else { return .invalid }
                if length >= 0 {
                    guard bytes.count - position >= length + 2 else { return .incomplete }
                    guard bytes[position + length] == 0x0D, bytes[position + length + 1] == 0x0A else { return .invalid }
                    position += length + 2
                }
            case "*", "~", ">", "%", "|":
                guard owed.count < limits.maxDepth, let declared = Int(text), declared >= -1, declared <= limits.maxElements else { return .invalid }
                if declared >= 0 {
                    let elements = marker == "%" || marker == "|" ? 2 * declared : declared
                    guard elements <= limits.maxElements else { return .invalid }
                    // An attribute owes its pairs, then the value it annotates.
                    opens = elements + (marker == "|" ? 1 : 0)
                }
            default:
                return .invalid
            }
            if opens > 0 {
                owed.append(opens)
                continue
            }
            // A value is complete: it pays one to the level above, which may complete in turn.
            var done = true
            while !owed.isEmpty {
                owed[owed.count - 1] -= 1
                if owed[owed.count - 1] > 0 {
                    done = false
                    break
                }
                owed.removeLast()
            }
            if done { return .complete(end: position) }
        }
    }
}
