import Courier
import CourierMemory
import Logging
import OTel
import ServiceLifecycle

// README: "Tracing: configure swift-otel".
func tracingSetup() async throws {
    var configuration = OTel.Configuration.default
    configuration.serviceName = "orders"                     // OTEL_SERVICE_NAME overrides it
    configuration.resourceAttributes = ["deployment.environment.name": "staging"]
    configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: 0.25)!
    configuration.traces.otlpExporter.protocol = .grpc       // or .httpProtobuf
    configuration.traces.otlpExporter.endpoint = "http://127.0.0.1:4317"
    configuration.metrics.enabled = true                    // TelemetryMiddleware's histograms and counters
    configuration.logs.enabled = false
    // Bootstraps InstrumentationSystem (W3C traceparent + baggage propagators), MetricsSystem and
    // LoggingSystem; returns the service that batches and exports.
    let observability = try OTel.bootstrap(configuration: configuration)

    let broker = MemoryBroker(middlewares: [TelemetryMiddleware()])
    broker.subscriber("orders") { (order: String, context) in
        context.span?.attributes["order.size"] = order.count
    }

    // The group stops services in reverse order: Courier drains first, then swift-otel flushes.
    let group = ServiceGroup(
        services: [observability, CourierApp(brokers: [broker])],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: Logger(label: "orders")
    )
    try await group.run()
}

// README: "Tracing: FastStream's span names".
func fastStreamConventions() -> MemoryBroker {
    MemoryBroker(middlewares: [TelemetryMiddleware(conventions: .fastStream)])
}

// README: "Tracing: link instead of parent".
func processSpansLinked() -> MemoryBroker {
    MemoryBroker(middlewares: [TelemetryMiddleware(processSpanParent: .link)])
}
