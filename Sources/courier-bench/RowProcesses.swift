import Foundation
import Synchronization

/// One row a table can run: the name `--child-row` selects it by, and how it runs.
struct BenchScenario {
    var name: String
    var run: () async throws -> BrokerRow
}

/// Where a table's rows run.
enum RowPlacement: Sendable {
    /// In this process; `only`: just the scenario of that name (the process ``RowProcesses``
    /// started for it).
    case inProcess(only: String?)
    /// Each run of a row in a child process of its own; `table` is its `--tables` name.
    case childProcesses(RowProcesses, table: String)

    /// Whether the scenario named `name` runs from here.
    func runs(_ name: String) -> Bool {
        guard case .inProcess(let only?) = self else { return true }
        return name == only
    }
}

/// What CourierOTLP's tracer counted in one process: the run's report adds every row's up.
struct TracerCounts: Codable, Sendable {
    var exported = 0
    var dropped = 0
    var failed = 0

    static func + (left: TracerCounts, right: TracerCounts) -> TracerCounts {
        TracerCounts(exported: left.exported + right.exported, dropped: left.dropped + right.dropped, failed: left.failed + right.failed)
    }
}

/// What the process of one row prints on its standard output, as one JSON line.
struct ChildRowResult: Codable {
    /// Its row (a failed run: ``BrokerRow/failure``), its peak RSS the process's own.
    var row: BrokerRow
    /// CourierOTLP's tracers' counts, in the order of ``BenchTracing/otlpTracers``.
    var tracers: [TracerCounts]

    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = Self.nonConforming
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func decode(_ line: Substring) throws -> ChildRowResult {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(ChildRowResult.self, from: Data(line.utf8))
    }

    private static let nonConforming = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan"
    )
}

/// Runs every measured row in a child process of its own: courier-bench again, with
/// `--child-row`, which runs that one row once, then prints it (``ChildRowResult``) with the
/// child's peak RSS, the high-water mark of a process that ran nothing but that row.
///
/// Why a process per row: a process's resident memory does not shrink back when a row ends (the
/// allocator keeps the heap it grew), so in one shared process each row's peak was every earlier
/// row's too, and the column only grew down each table. The broker servers are processes of
/// their own and never counted; the children send their spans to this process's OTLP receiver,
/// so what the receiver holds is not counted either.
final class RowProcesses: Sendable {
    private let executable: String
    private let arguments: [String]
    private let counts = Mutex<[TracerCounts]>([])

    /// - Parameter arguments: the child's options but for `--tables`, `--workloads` and
    ///   `--child-row`, which each run adds.
    init(arguments: [String]) {
        executable = ChildRun.ownExecutable
        self.arguments = arguments
    }

    /// Runs the scenario named `row` of `table` in a process of its own; its row, or the error
    /// it failed with.
    func run(row: String, table: String, saturation: Bool) async throws -> BrokerRow {
        let run = try await ChildRun.run(
            executable,
            arguments + ["--tables", table, "--workloads", saturation ? "saturation" : "latency", "--child-row", row]
        )
        // Its last line is the result; its progress and errors went to our standard error.
        guard run.status == 0, let line = run.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let result = try? ChildRowResult.decode(line)
        else {
            throw BenchError("\(row): its process exited with \(run.status) without a result (see the lines above)")
        }
        counts.withLock { counts in
            for (index, tracer) in result.tracers.enumerated() {
                if index < counts.count { counts[index] = counts[index] + tracer } else { counts.append(tracer) }
            }
        }
        if let failure = result.row.failure { throw BenchError(failure) }
        return result.row
    }

    /// CourierOTLP's tracers' counts over every row run so far.
    var tracerCounts: [TracerCounts] { counts.withLock { $0 } }
}
