/// Text from bytes a broker delivered (header names and values), validated as UTF-8.
///
/// The standard library's `String(validating:as:)` is generic code that, called from another
/// module, instantiates type metadata on each call: thousands of instructions per message on a
/// path that reads several headers per message. Header text is nearly always ASCII, which needs
/// no validation and takes the string's fast initializer; anything else is validated fully.
package enum UTF8Text {
    /// The text of `bytes`, or nil when they are not valid UTF-8.
    @inlinable
    package static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The text of `bytes`, or nil when they are not valid UTF-8.
    @inlinable
    package static func string(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBufferPointer { string($0) }
    }

    /// Whether every byte is below 0x80, eight at a time.
    @inlinable
    package static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var index = 0
        while index + 8 <= bytes.count {
            if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] >= 0x80 { return false }
            index += 1
        }
        return true
    }
}
