/// Writes spans as the JSON array `courier-demo --spans-json` produces: objects with `name`,
/// `kind`, `traceId`, `spanId`, `parentSpanId` (or null), `startTimeUnixNano`, `endTimeUnixNano`,
/// `attributes`, `links` and `status`, the shape of the FastStream reference recordings.
public enum SpanJSON {
    public static func encode(_ spans: [RecordedSpan]) -> String {
        var out = "[\n"
        for (index, span) in spans.enumerated() {
            out += " {\n"
            out += "  \"name\": \(quote(span.name)),\n"
            out += "  \"kind\": \(quote(span.kind.rawValue)),\n"
            out += "  \"traceId\": \(quote(span.traceID)),\n"
            out += "  \"spanId\": \(quote(span.spanID)),\n"
            out += "  \"parentSpanId\": \(span.parentSpanID.map(quote) ?? "null"),\n"
            out += "  \"startTimeUnixNano\": \(span.startTimeUnixNano),\n"
            out += "  \"endTimeUnixNano\": \(span.endTimeUnixNano),\n"
            out += "  \"attributes\": \(object(span.attributes)),\n"
            let links = span.links.map {
                "{\"traceId\": \(quote($0.traceID)), \"spanId\": \(quote($0.spanID)), \"attributes\": \(object($0.attributes))}"
            }
            out += "  \"links\": [\(links.joined(separator: ", "))],\n"
            out += "  \"status\": {\"code\": \(quote(span.status.code)), \"message\": \(quote(span.status.message))}\n"
            out += index == spans.count - 1 ? " }\n" : " },\n"
        }
        return out + "]\n"
    }

    private static func object(_ attributes: [String: RecordedSpan.Value]) -> String {
        let members = attributes.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \(value($0.value))" }
        return "{" + members.joined(separator: ", ") + "}"
    }

    private static func value(_ value: RecordedSpan.Value) -> String {
        switch value {
        case .string(let string): return quote(string)
        case .int(let int): return String(int)
        case .double(let double): return double.isFinite ? String(double) : quote(String(double))
        case .bool(let bool): return bool ? "true" : "false"
        case .array(let values): return "[" + values.map(Self.value).joined(separator: ", ") + "]"
        }
    }

    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
