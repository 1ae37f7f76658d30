import Courier
import CourierMemory
import CourierOTLP
import Foundation
import Logging
import ServiceLifecycle

// README: "A faster tracer for high rates: CourierOTLP".
func otlpTracerSetup() async throws {
    var configuration = try OTLPTracerConfiguration(environment: ProcessInfo.processInfo.environment)
    configuration.serviceName = "orders"                   // set after reading: the code wins
    configuration.exporter = .grpc(endpoint: "http://127.0.0.1:4317")  // or .httpProtobuf(endpoint: "http://127.0.0.1:4318/v1/traces")
    configuration.sampler = .parentBased(root: .traceIDRatio(0.25))
    configuration.shutdownTimeout = .seconds(2)            // the flush on shutdown never takes longer
    let logger = Logger(label: "orders")
    let tracer = OTLPTracer(configuration: configuration, logger: logger)

    let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
    broker.subscriber("orders") { (order: String, context) in
        context.span?.attributes["order.size"] = order.count
        context.logger.info("order received")             // with trace_id and span_id, see below
    }

    // The group stops services in reverse order: Courier drains first, then the tracer flushes.
    let group = ServiceGroup(
        services: [tracer, CourierApp(brokers: [broker])],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    try await group.run()
    logger.info("tracing", metadata: ["exported": "\(tracer.exportedSpanCount)", "dropped": "\(tracer.droppedSpanCount)"])
}

// README: trace ids in every log record.
func otlpLogging() {
    LoggingSystem.bootstrap(StreamLogHandler.standardOutput, metadataProvider: OTLPTracer.loggingMetadataProvider)
}
