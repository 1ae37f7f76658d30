import Courier
import CourierMemory
import Logging
import OTel
import ServiceLifecycle

// README: "Tracing: bound the shutdown flush".
func boundedTracingShutdown() async throws {
    let flushBound = Duration.seconds(2)
    var configuration = OTel.Configuration.default
    configuration.serviceName = "orders"
    // Each export (so the flush at shutdown) gives up after the bound: swift-otel's defaults are
    // 10 s for the OTLP request and 30 s for the batch export.
    configuration.traces.otlpExporter.timeout = flushBound
    configuration.traces.batchSpanProcessor.exportTimeout = flushBound
    let observability = try OTel.bootstrap(configuration: configuration)

    let broker = MemoryBroker(middlewares: [TelemetryMiddleware()])
    let app = CourierApp(brokers: [broker], shutdownTimeout: .seconds(10))
    var group = ServiceGroupConfiguration(
        services: [.init(service: observability), .init(service: app)],
        gracefulShutdownSignals: [.sigterm],
        logger: Logger(label: "orders")
    )
    // And a hard stop: past the app's drain plus the flush bound (and a margin), the group cancels
    // what is left. Keep the sum under the platform's grace period (Kubernetes: 30 s by default).
    group.maximumGracefulShutdownDuration = app.shutdownTimeout + flushBound + .seconds(1)
    // The last resort, if even cancelled work hangs: swift-service-lifecycle ends the process
    // (a fatalError) this long after cancelling.
    group.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: group).run()
}
