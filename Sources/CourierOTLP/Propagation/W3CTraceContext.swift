/// W3C Trace Context (`traceparent`, `tracestate`) formatting and parsing.
enum W3CTraceContext {
    static let traceparent = "traceparent"
    static let tracestate = "tracestate"

    /// `00-<trace id>-<span id>-<flags>`: written once into a string of its 55 bytes (on every
    /// publish's path, where concatenating five strings cost ten times as much).
    static func traceparent(_ context: OTLPSpanContext) -> String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            let dash = UInt8(ascii: "-")
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "0")
            buffer[2] = dash
            Hex.write(context.traceID.high, digits: 16, into: buffer, at: 3)
            Hex.write(context.traceID.low, digits: 16, into: buffer, at: 19)
            buffer[35] = dash
            Hex.write(context.spanID, digits: 16, into: buffer, at: 36)
            buffer[52] = dash
            Hex.write(UInt64(context.traceFlags), digits: 2, into: buffer, at: 53)
            return 55
        }
    }

    /// Parses a `traceparent` header; `nil` when malformed (the W3C rules: version `ff` invalid,
    /// version `00` exactly 55 characters, a later version at least 55 with a `-` after the flags,
    /// lowercase hex, neither id all zeros).
    static func parse(traceparent: String, tracestate: String?) -> OTLPSpanContext? {
        var header = traceparent
        return header.withUTF8 { bytes -> OTLPSpanContext? in
            guard bytes.count >= 55 else { return nil }
            guard let version = Hex.parse(bytes, 0, 2), version != 0xFF else { return nil }
            if version == 0 {
                guard bytes.count == 55 else { return nil }
            } else if bytes.count > 55 {
                guard bytes[55] == UInt8(ascii: "-") else { return nil }
            }
            let dash = UInt8(ascii: "-")
            guard bytes[2] == dash, bytes[35] == dash, bytes[52] == dash else { return nil }
            guard let high = Hex.parse(bytes, 3, 16), let low = Hex.parse(bytes, 19, 16),
                let spanID = Hex.parse(bytes, 36, 16), let flags = Hex.parse(bytes, 53, 2)
            else { return nil }
            let traceID = OTLPTraceID(high: high, low: low)
            guard !traceID.isZero, spanID != 0 else { return nil }
            return OTLPSpanContext(
                traceID: traceID,
                spanID: spanID,
                traceFlags: UInt8(flags),
                traceState: tracestate?.trimmingSpaces ?? "",
                isRemote: true
            )
        }
    }
}
