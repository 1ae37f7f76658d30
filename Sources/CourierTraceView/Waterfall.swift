/// Draws finished spans as a terminal waterfall, one block per trace, the way Jaeger or Tempo
/// show it: children indented under their parent, a bar for when each span ran.
public enum Waterfall {
    public static func render(_ spans: [RecordedSpan], barWidth: Int = 48) -> String {
        var traces: [String: [RecordedSpan]] = [:]
        var traceOrder: [String] = []
        for span in spans.sorted(by: { $0.startTimeUnixNano < $1.startTimeUnixNano }) {
            if traces[span.traceID] == nil { traceOrder.append(span.traceID) }
            traces[span.traceID, default: []].append(span)
        }
        return traceOrder.map { render(trace: $0, traces[$0]!, barWidth: barWidth) }.joined(separator: "\n")
    }

    private static func render(trace traceID: String, _ spans: [RecordedSpan], barWidth: Int) -> String {
        let ids = Set(spans.map(\.spanID))
        var children: [String: [RecordedSpan]] = [:]
        var roots: [RecordedSpan] = []
        for span in spans {
            if let parent = span.parentSpanID, ids.contains(parent) {
                children[parent, default: []].append(span)
            } else {
                roots.append(span)
            }
        }
        let start = spans.map(\.startTimeUnixNano).min() ?? 0
        let end = spans.map(\.endTimeUnixNano).max() ?? start
        let total = max(end - start, 1)

        var rows: [(label: String, span: RecordedSpan)] = []
        func walk(_ span: RecordedSpan, depth: Int) {
            let marker = depth == 0 ? "" : String(repeating: "  ", count: depth - 1) + "└─ "
            rows.append((marker + span.name, span))
            for child in children[span.spanID] ?? [] { walk(child, depth: depth + 1) }
        }
        for root in roots { walk(root, depth: 0) }

        let labelWidth = max(rows.map(\.label.count).max() ?? 0, 4)
        var out = "trace \(traceID)  \(spans.count) spans  \(milliseconds(total))\n"
        out += pad("span", labelWidth) + "  kind      " + leftPad("start", 10) + leftPad("duration", 11) + "  timeline\n"
        for (label, span) in rows {
            let offset = span.startTimeUnixNano - start
            let duration = span.endTimeUnixNano - span.startTimeUnixNano
            let barStart = Int(Double(offset) / Double(total) * Double(barWidth))
            let barLength = max(1, Int((Double(duration) / Double(total) * Double(barWidth)).rounded()))
            let bar = String(repeating: " ", count: min(barStart, barWidth - 1))
                + String(repeating: "█", count: min(barLength, barWidth - min(barStart, barWidth - 1)))
            let status = span.status.code == "error" ? "  ✗ \(span.status.message)" : ""
            out += pad(label, labelWidth) + "  " + pad(span.kind.rawValue, 8) + "  "
                + leftPad(milliseconds(offset), 10) + leftPad(milliseconds(duration), 11) + "  |" + pad(bar, barWidth) + "|" + status + "\n"
        }
        return out
    }

    private static func milliseconds(_ nanoseconds: UInt64) -> String {
        let value = Double(nanoseconds) / 1_000_000
        let rounded = (value * 10).rounded() / 10
        return "\(rounded) ms"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    private static func leftPad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
