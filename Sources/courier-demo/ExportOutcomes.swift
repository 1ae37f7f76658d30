import Logging
import Synchronization

/// What swift-otel's exports actually did: its batch processor logs "Exported batch." (debug)
/// or "Failed to export batch." (warning) for every batch on its diagnostic logger, its OTLP
/// exporters log "Partial success" with `rejected_spans` when the collector took the request but
/// refused spans, and none of them is public API to wrap. This log handler, the diagnostic logger's backend,
/// counts both and passes warnings and worse on to standard error as before, so the demo reports
/// what happened instead of assuming success.
final class ExportOutcomes: Sendable {
    private struct Counts {
        var exported = 0
        var failed = 0
        var lastError: String?
        var rejectedSpans = 0
        var rejection: String?
    }

    private let counts = Mutex(Counts())

    /// Batches the collector took.
    var exported: Int { counts.withLock { $0.exported } }
    /// Batches that failed (refused, timed out, cancelled at the shutdown bound).
    var failed: Int { counts.withLock { $0.failed } }
    /// The error of the last failed batch.
    var lastError: String? { counts.withLock { $0.lastError } }
    /// Spans the collector answered it did not take (OTLP partial success), and its reason.
    var rejectedSpans: Int { counts.withLock { $0.rejectedSpans } }
    var rejection: String? { counts.withLock { $0.rejection } }

    /// swift-otel's diagnostic logger: counts the export outcomes and forwards warnings and worse
    /// to standard error. Its level must let debug through (swift-otel sets it from
    /// `diagnosticLogLevel`), or successes go uncounted.
    func logger() -> Logger {
        Logger(label: "swift-otel") { [self] label in Handler(outcomes: self, forward: StreamLogHandler.standardError(label: label)) }
    }

    fileprivate func record(_ message: String, error: String?, metadata: Logger.Metadata) {
        switch message {
        case "Exported batch.":
            counts.withLock { $0.exported += 1 }
        case "Failed to export batch.":
            counts.withLock {
                $0.failed += 1
                $0.lastError = error
            }
        case "Partial success":
            let rejected = metadata["rejected_spans"].flatMap { Int("\($0)") } ?? 0
            counts.withLock {
                $0.rejectedSpans += rejected
                $0.rejection = metadata["message"].map { "\($0)" }
            }
        default:
            break
        }
    }

    private struct Handler: LogHandler {
        let outcomes: ExportOutcomes
        var forward: StreamLogHandler
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let error = event.metadata?["error"] ?? event.error.map { .string("\($0)") }
            outcomes.record(event.message.description, error: error.map { "\($0)" }, metadata: metadata.merging(event.metadata ?? [:]) { $1 })
            guard event.level >= .warning else { return }
            var forward = self.forward
            forward.logLevel = .warning
            forward.metadata = metadata
            forward.log(event: event)
        }
    }
}
