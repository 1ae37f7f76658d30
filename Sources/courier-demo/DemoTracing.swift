import CourierTraceView
import Logging
import Foundation
import OTel
import ServiceLifecycle
import Tracing

/// The demo's tracing: swift-otel, always sampling, recorded for the waterfall, exported over
/// OTLP when an endpoint is configured, and never holding the process at shutdown longer than
/// `flushTimeout` whatever the collector does.
struct DemoTracing: Sendable {
    /// Where spans go: swift-otel's tracer, recorded for the waterfall (a `SpanRecorder` over an
    /// opaque tracer type, so kept as `any Tracer`).
    let tracer: any Tracer
    /// The spans that finished so far.
    let finishedSpans: @Sendable () -> [RecordedSpan]
    /// swift-otel's background work (batching, exporting); flushes on graceful shutdown.
    let service: any Service
    /// What the exports did.
    let outcomes: ExportOutcomes
    /// How long the flush at shutdown may take.
    let flushTimeout: Duration

    /// - Parameters:
    ///   - exporting: whether to export over OTLP (to `OTEL_EXPORTER_OTLP_*`'s endpoint).
    ///   - flushTimeout: the bound on each export, so on the flush at shutdown: the OTLP
    ///     exporter's request timeout and the batch processor's export timeout (swift-otel's
    ///     defaults are 10 and 30 seconds, which a collector that is down makes the demo wait).
    ///   - endpoint: the OTLP endpoint in code (the tests' collector); nil for the environment's.
    init(exporting: Bool, flushTimeout: Duration, endpoint: String? = nil) throws {
        let outcomes = ExportOutcomes()
        var configuration = OTel.Configuration.default
        configuration.serviceName = "courier-demo"  // OTEL_SERVICE_NAME overrides it
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.sampler = .alwaysOn
        configuration.traces.exporter = exporting ? .otlp : .none
        if let endpoint { configuration.traces.otlpExporter.endpoint = endpoint }
        configuration.traces.otlpExporter.timeout = flushTimeout
        configuration.traces.batchSpanProcessor.exportTimeout = flushTimeout
        // Debug, so that the export outcomes reach the counting handler (which prints warnings only).
        configuration.diagnosticLogger = .custom(outcomes.logger())
        configuration.diagnosticLogLevel = .debug
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        let recorder = SpanRecorder(wrapping: backend.factory)
        self.tracer = recorder
        self.finishedSpans = { recorder.finishedSpans }
        self.service = backend.service
        self.outcomes = outcomes
        self.flushTimeout = flushTimeout
    }

    /// A service group for the app and the tracing: it stops its services in reverse order (the
    /// app drains first, then swift-otel flushes the spans of the app's last messages), and
    /// escalates to cancellation when the shutdown takes longer than the app's drain plus the
    /// flush bound and a second's margin (a flush still running is cancelled there, its batch
    /// counted as failed).
    func serviceGroup(app: (any Service)?, appShutdownTimeout: Duration, logger: Logger) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service)] + (app.map { [.init(service: $0)] } ?? []),
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = appShutdownTimeout + flushTimeout + .seconds(1)
        // No `maximumCancellationDuration`: past it swift-service-lifecycle ends the process with
        // a fatalError, and a cancelled export ends promptly anyway.
        return ServiceGroup(configuration: configuration)
    }

    /// Runs `group`; a shutdown the group had to cut at its bound (it cancels what is left, and
    /// its run throws `CancellationError`) is the bound doing its job, not a failure: what the
    /// exports did is in ``outcomes``.
    func run(_ group: ServiceGroup) async throws {
        do {
            try await group.run()
        } catch is CancellationError {
        }
    }

    /// One line on what was exported, from the outcomes swift-otel reported.
    func exportSummary(endpoint: String, protocolName: String) -> String {
        let exported = outcomes.exported
        let failed = outcomes.failed
        let destination = "over OTLP (\(protocolName)) to \(endpoint)"
        switch (exported, failed) {
        case (0, 0):
            return "nothing confirmed exported \(destination): no export finished within the flush timeout (\(flushTimeout))"
        case (_, 0) where outcomes.rejectedSpans > 0:
            return "the collector took \(exported) batch(es) \(destination) but rejected \(outcomes.rejectedSpans) span(s)"
                + (outcomes.rejection.map { ": \($0)" } ?? "")
        case (_, 0):
            return "exported \(exported) batch(es) \(destination)"
        default:
            return "export \(destination) failed for \(failed) of \(exported + failed) batch(es)"
                + (outcomes.lastError.map { ": \($0)" } ?? "")
        }
    }
}
