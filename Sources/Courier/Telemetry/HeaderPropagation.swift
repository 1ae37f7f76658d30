import Instrumentation

/// Writes propagation fields into message headers.
struct HeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout MessageHeaders) {
        carrier[key] = value
    }
}

/// Reads propagation fields from message headers; hides a trace context found to be malformed,
/// so no tracer has to cope with it.
struct HeadersExtractor: Extractor {
    var hidesTraceContext = false

    func extract(key: String, from carrier: MessageHeaders) -> String? {
        if hidesTraceContext, key == MessageHeaderName.traceparent || key == MessageHeaderName.tracestate {
            return nil
        }
        return carrier[key]
    }
}

/// The W3C `traceparent` syntax: `{version}-{32 hex trace id}-{16 hex parent id}-{2 hex flags}`.
package enum TraceParent {
    /// Whether `value` is a well-formed `traceparent` (any flags, future versions allowed).
    package static func isWellFormed(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55 else { return false }
        let dashes = [2, 35, 52]
        for index in dashes where bytes[index] != UInt8(ascii: "-") { return false }
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        }
        func isZero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == UInt8(ascii: "0") } }
        guard isHex(0..<2), isHex(3..<35), isHex(36..<52), isHex(53..<55) else { return false }
        let version = bytes[0..<2]
        guard version.elementsEqual("ff".utf8) == false, !isZero(3..<35), !isZero(36..<52) else { return false }
        // Version 00 is exactly 55 characters; later versions may append fields after a dash.
        if version.elementsEqual("00".utf8) { return bytes.count == 55 }
        return bytes.count == 55 || bytes[55] == UInt8(ascii: "-")
    }
}
