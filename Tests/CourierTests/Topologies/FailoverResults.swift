import Foundation

/// What a failover test measured, written for `scripts/failover-report.py`, which gathers the
/// runs into `Benchmarks/results/failover.json` and the README's "Production topologies" table.
///
/// Each test writes one JSON file of its own under `.build/failover-results/` (or the folder
/// `COURIER_FAILOVER_RESULTS` names): tests run in parallel, and a file each needs no lock.
enum FailoverResults {
    struct Result: Codable {
        var broker: String
        var form: String
        /// From the kill to the first publish acknowledged after it (the cluster took publishes
        /// again); nil when none was.
        var publishingResumedAfterSeconds: Double?
        /// From the kill to the first message handled after it; nil when none was.
        var handlingResumedAfterSeconds: Double?
        /// Acknowledged (confirmed) publishes that no consumer handled.
        var lost: Int
        /// Deliveries beyond the first of a message.
        var duplicates: Int
        var messages: Int
        var recordedAt: String
    }

    static var folder: URL {
        if let path = ProcessInfo.processInfo.environment["COURIER_FAILOVER_RESULTS"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/failover-results")
    }

    static func record(
        broker: String,
        form: String,
        publishingResumedAfter: Duration?,
        handlingResumedAfter: Duration?,
        lost: Int,
        duplicates: Int,
        messages: Int
    ) {
        func seconds(_ duration: Duration?) -> Double? {
            duration.map { (Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15).rounded() / 1000 }
        }
        let result = Result(
            broker: broker,
            form: form,
            publishingResumedAfterSeconds: seconds(publishingResumedAfter),
            handlingResumedAfterSeconds: seconds(handlingResumedAfter),
            lost: lost,
            duplicates: duplicates,
            messages: messages,
            recordedAt: ISO8601DateFormatter().string(from: Date())
        )
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let slug = String(form.filter { $0.isLetter || $0.isNumber }.prefix(40))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: folder.appendingPathComponent("\(broker)-\(slug).json"))
        } catch {
            // A result that cannot be written fails no test: the assertions are the test's.
            print("failover results: cannot write \(broker): \(error)")
        }
    }
}

/// What a scale-out test measured (three service processes, one killed), written beside the
/// failover results, in `scale-out/`, for the same report.
enum ScaleOutResults {
    struct Result: Codable {
        var broker: String
        /// Messages each process handled (the killed one first), duplicates included.
        var handledPerProcess: [Int]
        /// What the killed process had handled when it was killed.
        var killedProcessHandledBeforeKill: Int
        /// Deliveries beyond the first of a message.
        var duplicates: Int
        /// Messages no process handled.
        var missing: Int
        var messages: Int
        var recordedAt: String
    }

    static func record(broker: String, perProcess: [Int], killedHandledBeforeKill: Int, duplicates: Int, missing: Int, messages: Int) {
        let result = Result(
            broker: broker,
            handledPerProcess: perProcess,
            killedProcessHandledBeforeKill: killedHandledBeforeKill,
            duplicates: duplicates,
            missing: missing,
            messages: messages,
            recordedAt: ISO8601DateFormatter().string(from: Date())
        )
        do {
            let folder = FailoverResults.folder.appendingPathComponent("scale-out")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: folder.appendingPathComponent("\(broker).json"))
        } catch {
            print("scale-out results: cannot write \(broker): \(error)")
        }
    }
}
