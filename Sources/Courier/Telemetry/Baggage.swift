public import Tracing

/// W3C baggage: key/value pairs that travel with a trace, in the `baggage` header.
///
/// An immutable value (change it by making a new one), so concurrent tasks never race on it.
/// swift-otel propagates trace context only, so Courier's telemetry carries baggage itself, in
/// the W3C format FastStream and every OpenTelemetry SDK read.
public struct Baggage: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    private var entries: [String: String]

    public init() {
        self.entries = [:]
    }

    public init(_ entries: [String: String]) {
        self.entries = entries
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.entries = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    /// The value for `key`; setting nil removes it.
    public subscript(key: String) -> String? {
        get { entries[key] }
        set { entries[key] = newValue }
    }

    /// A copy with `key` set to `value`.
    public func setting(_ key: String, to value: String) -> Baggage {
        var copy = self
        copy[key] = value
        return copy
    }

    /// A copy without `key`.
    public func removing(_ key: String) -> Baggage {
        var copy = self
        copy[key] = nil
        return copy
    }

    /// A copy with every entry of `other` added, `other` winning on equal keys.
    public func merging(_ other: Baggage) -> Baggage {
        Baggage(entries.merging(other.entries, uniquingKeysWith: { _, new in new }))
    }

    /// The entries as a dictionary.
    public var dictionary: [String: String] { entries }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public func makeIterator() -> Dictionary<String, String>.Iterator {
        entries.makeIterator()
    }

    /// Runs `operation` with `baggage` in the current trace context, so publishes made inside it
    /// (`context.publish`, `broker.publish`) carry it.
    public static func withValue<T>(
        _ baggage: Baggage,
        operation: () async throws -> T
    ) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        context.baggage = baggage
        return try await ServiceContext.withValue(context, operation: operation)
    }
}

// MARK: - W3C wire format

extension Baggage {
    /// The most the W3C specification asks a propagator to read.
    static let maximumHeaderBytes = 8192
    static let maximumMembers = 180

    /// Parses a `baggage` header. Members that are not `key=value` are skipped and counted;
    /// properties (`;…`) are ignored; `+` reads as a space, as Python's propagator writes it.
    public static func parse(header: String) -> (baggage: Baggage, malformedMembers: Int) {
        var entries: [String: String] = [:]
        var malformed = 0
        guard header.utf8.count <= maximumHeaderBytes else { return (Baggage(), 1) }
        for member in header.split(separator: ",", omittingEmptySubsequences: true).prefix(maximumMembers) {
            let pair = member.split(separator: ";", maxSplits: 1)[...].first ?? ""
            guard let equals = pair.firstIndex(of: "=") else {
                if !pair.allSatisfy(\.isWhitespace) { malformed += 1 }
                continue
            }
            let key = pair[..<equals].trimmingWhitespace()
            let rawValue = pair[pair.index(after: equals)...].trimmingWhitespace()
            guard !key.isEmpty, let decodedKey = percentDecode(key), let value = percentDecode(rawValue) else {
                malformed += 1
                continue
            }
            entries[decodedKey] = value
        }
        return (Baggage(entries), malformed)
    }

    /// The `baggage` header value: `key=value` pairs, percent-encoded, sorted by key.
    public var headerValue: String {
        entries.sorted { $0.key < $1.key }
            .map { "\(Self.percentEncode($0.key))=\(Self.percentEncode($0.value))" }
            .joined(separator: ",")
    }

    private static func percentEncode(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hexDigit(byte >> 4))
                bytes.append(hexDigit(byte & 0xF))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case 0...0x20, 0x22, 0x2C, 0x3B, 0x5C, 0x7F...:
                return nil
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "A")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var trimmed = self
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        return trimmed
    }
}

// MARK: - ServiceContext

private enum BaggageKey: ServiceContextKey {
    typealias Value = Baggage
    static var nameOverride: String? { "courier-baggage" }
}

extension ServiceContext {
    /// The W3C baggage that travels with this context.
    public var baggage: Baggage? {
        get { self[BaggageKey.self] }
        set { self[BaggageKey.self] = newValue }
    }
}
