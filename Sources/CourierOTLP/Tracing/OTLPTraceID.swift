/// A 16-byte W3C / OpenTelemetry trace id, kept as two big-endian halves.
public struct OTLPTraceID: Sendable, Hashable, CustomStringConvertible {
    /// The first 8 bytes, big-endian.
    public var high: UInt64
    /// The last 8 bytes, big-endian (what the trace-id ratio sampler looks at).
    public var low: UInt64

    /// Creates a trace id from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Whether every byte is zero (an invalid trace id).
    public var isZero: Bool { high == 0 && low == 0 }

    /// 32 lowercase hex digits.
    public var description: String { Hex.string(high) + Hex.string(low) }
}

/// Lowercase hex for ids, without Foundation and without a formatter per call.
enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// 16 lowercase hex digits.
    static func string(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            digits.withUnsafeBufferPointer { digits in
                for index in 0..<16 {
                    buffer[index] = digits[Int((value >> UInt64((15 - index) * 4)) & 0xF)]
                }
            }
            return 16
        }
    }

    /// Writes `value` as `count` lowercase hex digits (the low `count` nibbles) at `offset`.
    @inline(__always)
    static func write(_ value: UInt64, digits count: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<count {
            buffer[offset + index] = digits[Int((value >> UInt64((count - 1 - index) * 4)) & 0xF)]
        }
    }

    /// 2 lowercase hex digits.
    static func string(_ value: UInt8) -> String {
        String(unsafeUninitializedCapacity: 2) { buffer in
            buffer[0] = digits[Int(value >> 4)]
            buffer[1] = digits[Int(value & 0xF)]
            return 2
        }
    }

    /// Parses exactly `count` hex digits (lowercase, as W3C requires) from `bytes` at `offset`.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int, _ count: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in offset..<(offset + count) {
            let byte = bytes[index]
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(nibble)
        }
        return value
    }
}
