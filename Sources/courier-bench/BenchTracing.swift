import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// The tracers of the traced rows, every one exporting OTLP/HTTP protobuf in batches to a local
/// receiver that discards what it gets: swift-otel and CourierOTLP, always on and with a 10%
/// parent-based sampler.
struct BenchTracing {
    let receiver: DiscardingOTLPReceiver
    let services: [any Service]
    /// The latency tables' traced rows: each tracer always on.
    let latencyTracers: [BenchTracer]
    /// The saturation tables' traced rows: each tracer always on, then each at 10%.
    let saturationTracers: [BenchTracer]

    static func start() async throws -> BenchTracing {
        let receiver = try await DiscardingOTLPReceiver.start()
        func swiftOTel(_ sampler: OTel.Configuration.TracesConfiguration.SamplerConfiguration) throws -> (any Tracer, any Service) {
            var configuration = OTel.Configuration.default
            configuration.traces.sampler = sampler
            configuration.traces.exporter = .otlp
            configuration.traces.otlpExporter.protocol = .httpProtobuf
            configuration.traces.otlpExporter.endpoint = receiver.endpoint
            configuration.serviceName = "courier-bench"
            configuration.metrics.enabled = false
            configuration.logs.enabled = false
            configuration.diagnosticLogLevel = .error
            let backend = try OTel.makeTracingBackend(configuration: configuration)
            return (backend.factory, backend.service)
        }
        let (alwaysOn, alwaysOnService) = try swiftOTel(.alwaysOn)
        let (sampled, sampledService) = try swiftOTel(.parentBasedTraceIDRatio(ratio: 0.1)!)
        let swiftOTelAlwaysOn = BenchTracer(name: "swift-otel (always on, OTLP/HTTP batch)", tracer: alwaysOn)
        let swiftOTelSampled = BenchTracer(name: "swift-otel (10% parent-based, OTLP/HTTP batch)", tracer: sampled)
        return BenchTracing(
            receiver: receiver,
            services: [alwaysOnService, sampledService],
            latencyTracers: [swiftOTelAlwaysOn],
            saturationTracers: [swiftOTelAlwaysOn, swiftOTelSampled]
        )
    }

    func stop() async {
        await receiver.stop()
    }
}
