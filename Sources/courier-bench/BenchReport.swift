import Foundation

/// Everything one `courier-bench` run measured: the tables it prints, the same as JSON, and a
/// chart of the saturation tables (msg/s per broker and row, log scale) as SVG.
struct BenchReport: Codable {
    struct Table: Codable {
        var broker: String
        /// "latency" or "saturation".
        var workload: String
        var title: String
        var rows: [BrokerRow]
        var peer: String
        var peerColumn: String
    }

    var command: String
    var date = ISO8601DateFormatter().string(from: Date())
    var tables: [Table] = []
    var backlog: [BacklogRow] = []
    /// What the tracers exported and dropped over the whole run.
    var exports = ""

    init(command: String) {
        self.command = command
    }

    mutating func add(broker: String, saturation: Bool, title: String, rows: [BrokerRow], peer: String = "", peerColumn: String = "vs FastStream traced") {
        tables.append(Table(broker: broker, workload: saturation ? "saturation" : "latency", title: title, rows: rows, peer: peer, peerColumn: peerColumn))
    }

    var markdown: String {
        var out = ""
        for workload in ["latency", "saturation"] {
            let selected = tables.filter { $0.workload == workload }
            guard !selected.isEmpty else { continue }
            out += "\n## \(workload == "latency" ? "Latency: one message after another" : "Saturation: concurrent publishers")\n"
            for table in selected {
                out += BrokerWorkload.table("### \(table.broker)\n\n\(table.title)", table.rows, peer: table.peer, peerColumn: table.peerColumn)
            }
        }
        if !backlog.isEmpty { out += "\n" + BacklogRow.table(backlog) }
        if !exports.isEmpty { out += "\n" + exports + "\n" }
        return out
    }

    /// Writes the JSON, the chart, and the tables as Markdown beside the JSON (`.md`).
    func write(json: String, chart: String) throws {
        for path in [json, chart] {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(self).write(to: URL(fileURLWithPath: json))
        try Data(svg.utf8).write(to: URL(fileURLWithPath: chart))
        let markdownPath = URL(fileURLWithPath: json).deletingPathExtension().appendingPathExtension("md")
        try Data(("`\(command)`, \(date)\n" + markdown).utf8).write(to: markdownPath)
    }

    /// Horizontal bars, one group per saturation table, msg/s on a logarithmic axis.
    var svg: String {
        let groups = tables.filter { $0.workload == "saturation" }
        let values = groups.flatMap { $0.rows.map(\.throughput) }.filter { $0 > 0 }
        guard let smallest = values.min(), let largest = values.max() else {
            return #"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#
        }
        let lowDecade = floor(log10(smallest)), highDecade = ceil(log10(largest))
        let labelWidth = 430.0, plotWidth = 520.0, barHeight = 14.0, gap = 4.0, groupGap = 30.0, top = 50.0
        func x(_ value: Double) -> Double {
            labelWidth + (log10(max(value, pow(10, lowDecade))) - lowDecade) / max(1, highDecade - lowDecade) * plotWidth
        }
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        func color(_ name: String) -> String {
            if name.hasPrefix("raw") { return "#7f7f7f" }
            if name.hasPrefix("FastStream") { return name.contains("tracing (") ? "#d62728" : "#ff9896" }
            if name.contains("CourierOTLP") { return name.contains("10%") ? "#98df8a" : "#2ca02c" }
            if name.contains("swift-otel") { return name.contains("10%") ? "#ffbb78" : "#ff7f0e" }
            if name.contains("no-op") { return "#aec7e8" }
            return "#1f77b4"
        }
        var body = ""
        var y = top
        for group in groups {
            body += #"<text x="10" y="\#(y + 12)" font-weight="bold">\#(escape(group.broker))</text>"#
            y += 20
            for row in group.rows where row.failure == nil {
                let end = x(row.throughput)
                body += #"<text x="\#(labelWidth - 6)" y="\#(y + barHeight - 3)" text-anchor="end">\#(escape(row.name))</text>"#
                body += #"<rect x="\#(labelWidth)" y="\#(y)" width="\#(max(1, end - labelWidth))" height="\#(barHeight)" fill="\#(color(row.name))"/>"#
                body += #"<text x="\#(end + 4)" y="\#(y + barHeight - 3)">\#(Row.format(row.throughput, decimals: 0))</text>"#
                y += barHeight + gap
            }
            y += groupGap
        }
        var axis = ""
        var decade = lowDecade
        while decade <= highDecade {
            let position = x(pow(10, decade))
            axis += #"<line x1="\#(position)" y1="\#(top - 8)" x2="\#(position)" y2="\#(y - groupGap)" stroke="lightgray"/>"#
            axis += #"<text x="\#(position)" y="\#(top - 12)" text-anchor="middle">\#(Row.format(pow(10, decade), decimals: 0))</text>"#
            decade += 1
        }
        let width = labelWidth + plotWidth + 80
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(y)" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="18" font-size="13" font-weight="bold">courier-bench, saturation: msg/s (log scale), \(escape(date))</text>
            \(axis)
            \(body)
            </svg>

            """
    }
}
