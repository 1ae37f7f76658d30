import CourierOTLP
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// The tracers of the traced rows, every one exporting OTLP/HTTP protobuf in batches to a local
/// receiver that discards what it gets: swift-otel and CourierOTLP, always on and with a 10%
/// parent-based sampler. Both get the same batch settings, tuned for high rates as a user tracing
/// at these rates would set them (a queue of 65,536 spans, batches of 4,096, at least every
/// second; the defaults, 2,048 and 512, drop most spans at 100,000 a second), and both drop what
/// does not fit: the receiver's and CourierOTLP's counts are printed with the results, since a
/// tracer that dropped most of its spans would look cheaper than it is.
struct BenchTracing {
    /// The receiver this process started; none in a row's own process, which sends its spans to
    /// the receiver of the process that started it.
    let receiver: DiscardingOTLPReceiver?
    /// Where the tracers send their spans.
    let endpoint: String
    let services: [any Service]
    /// CourierOTLP's tracers, whose counters the report shows (spans exported, dropped).
    let otlpTracers: [OTLPTracer]
    /// The latency tables' traced rows: each tracer always on.
    let latencyTracers: [BenchTracer]
    /// The saturation tables' traced rows: each tracer always on, then each at 10%.
    let saturationTracers: [BenchTracer]

    static let queueSize = 65_536
    static let batchSize = 4_096
    static let scheduleDelay = Duration.seconds(1)

    /// The tracers, sending to `endpoint`, or to a receiver started here when nil.
    static func start(endpoint given: String? = nil) async throws -> BenchTracing {
        let receiver: DiscardingOTLPReceiver?
        let endpoint: String
        if let given {
            (receiver, endpoint) = (nil, given)
        } else {
            let started = try await DiscardingOTLPReceiver.start()
            (receiver, endpoint) = (started, started.endpoint)
        }
        func swiftOTel(_ sampler: OTel.Configuration.TracesConfiguration.SamplerConfiguration) throws -> (any Tracer, any Service) {
            var configuration = OTel.Configuration.default
            configuration.traces.sampler = sampler
            configuration.traces.exporter = .otlp
            configuration.traces.otlpExporter.protocol = .httpProtobuf
            configuration.traces.otlpExporter.endpoint = endpoint
            configuration.traces.batchSpanProcessor.maxQueueSize = queueSize
            configuration.traces.batchSpanProcessor.maxExportBatchSize = batchSize
            configuration.traces.batchSpanProcessor.scheduleDelay = scheduleDelay
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

        func courierOTLP(_ sampler: OTLPSampler) -> OTLPTracer {
            var configuration = OTLPTracerConfiguration()
            configuration.maxQueueSize = queueSize
            configuration.maxExportBatchSize = batchSize
            configuration.scheduleDelay = scheduleDelay
            configuration.serviceName = "courier-bench"
            configuration.exporter = .httpProtobuf(endpoint: endpoint)
            configuration.sampler = sampler
            return OTLPTracer(configuration: configuration)
        }
        let otlpAlwaysOn = courierOTLP(.alwaysOn)
        let otlpSampled = courierOTLP(.parentBased(root: .traceIDRatio(0.1)))
        let courierOTLPAlwaysOn = BenchTracer(name: "CourierOTLP (always on, OTLP/HTTP batch)", tracer: otlpAlwaysOn)
        let courierOTLPSampled = BenchTracer(name: "CourierOTLP (10% parent-based, OTLP/HTTP batch)", tracer: otlpSampled)
        return BenchTracing(
            receiver: receiver,
            endpoint: endpoint,
            services: [alwaysOnService, sampledService, otlpAlwaysOn, otlpSampled],
            otlpTracers: [otlpAlwaysOn, otlpSampled],
            latencyTracers: [swiftOTelAlwaysOn, courierOTLPAlwaysOn],
            saturationTracers: [swiftOTelAlwaysOn, swiftOTelSampled, courierOTLPAlwaysOn, courierOTLPSampled]
        )
    }

    /// What CourierOTLP's tracers of this process exported, dropped and failed to export.
    var tracerCounts: [TracerCounts] {
        otlpTracers.map { TracerCounts(exported: $0.exportedSpanCount, dropped: $0.droppedSpanCount, failed: $0.failedSpanCount) }
    }

    /// What reached the receiver, and what CourierOTLP's tracers exported and dropped, here and
    /// in the rows' own processes (`rows`, tracer by tracer).
    func summary(adding rows: [TracerCounts]) -> String {
        let otlp = tracerCounts.enumerated().map { index, own in
            let counts = index < rows.count ? own + rows[index] : own
            return "CourierOTLP tracer \(index + 1): \(counts.exported) spans exported, \(counts.dropped) dropped (queue full), \(counts.failed) failed"
        }
        let received = receiver.map { ["The local OTLP receiver answered \($0.requests) export requests (\($0.bytes / 1_048_576) MiB)."] } ?? []
        return (received + otlp).joined(separator: "\n")
    }

    func stop() async {
        await receiver?.stop()
    }
}
