/// Everything ``OTLPTracer`` needs: resource, sampler, exporter, queue and timeouts.
///
/// `OTLPTracerConfiguration()` has the OpenTelemetry specification's defaults;
/// ``init(environment:)`` starts from them and applies the standard `OTEL_*` variables (as
/// swift-otel honours them). Whatever you set on the value afterwards wins over the environment.
///
/// | Variable | Setting |
/// |---|---|
/// | `OTEL_SERVICE_NAME` | ``serviceName`` |
/// | `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, percent-encoded) | ``resourceAttributes`` |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | ``sampler`` |
/// | `OTEL_TRACES_EXPORTER` (`otlp`, `none`) | ``exporter`` |
/// | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (`http/protobuf`, `grpc`) | ``exporter`` |
/// | `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` | ``exporter`` (the generic one gets `/v1/traces` appended for HTTP) |
/// | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | ``headers`` |
/// | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (ms), `OTEL_BSP_EXPORT_TIMEOUT` (ms) | ``exportTimeout`` (the smaller) |
/// | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` (ms) | ``maxQueueSize``, ``maxExportBatchSize``, ``scheduleDelay`` |
///
/// The `OTEL_EXPORTER_OTLP_TRACES_*` variables win over `OTEL_EXPORTER_OTLP_*`.
public struct OTLPTracerConfiguration: Sendable {
    /// `service.name` of the resource; when `nil`, `service.name` from ``resourceAttributes``, or
    /// `unknown_service`.
    public var serviceName: String?
    /// Further resource attributes (`deployment.environment.name`, `service.version`…).
    public var resourceAttributes: [String: String]
    /// Which traces are recorded; `parentBased(root: .alwaysOn)` by default.
    public var sampler: OTLPSampler
    /// Where spans go; OTLP/HTTP to `http://localhost:4318/v1/traces` by default.
    public var exporter: OTLPExporterChoice
    /// Headers sent with every export (HTTP headers, or gRPC metadata with lowercased names).
    /// Their values are never logged nor quoted in errors.
    public var headers: [String: String]
    /// Ended spans waiting for export at most; beyond, spans are dropped and counted (2048).
    public var maxQueueSize: Int
    /// Spans per export at most (512); a full batch wakes the export task at once.
    public var maxExportBatchSize: Int
    /// How long an incomplete batch waits before it is exported anyway (5 s).
    public var scheduleDelay: Duration
    /// How long one export may take before it is abandoned and counted failed (10 s).
    public var exportTimeout: Duration
    /// How long ``OTLPTracer/run()`` spends flushing on shutdown at most; spans still queued then
    /// are dropped and counted (2 s).
    public var shutdownTimeout: Duration
    /// The instrumentation scope every span is reported under.
    public var scopeName: String
    /// The instrumentation scope's version.
    public var scopeVersion: String

    /// The specification's defaults.
    public init() {
        serviceName = nil
        resourceAttributes = [:]
        sampler = .parentBased(root: .alwaysOn)
        exporter = .defaultHTTP
        headers = [:]
        maxQueueSize = 2048
        maxExportBatchSize = 512
        scheduleDelay = .seconds(5)
        exportTimeout = .seconds(10)
        shutdownTimeout = .seconds(2)
        scopeName = OTLPLibrary.name
        scopeVersion = OTLPLibrary.version
    }

    /// The defaults, with the `OTEL_*` variables of `environment` applied.
    ///
    /// - Throws: ``OTLPConfigurationError`` naming the first variable whose value is invalid or
    ///   unsupported.
    public init(environment: [String: String]) throws {
        self.init()
        let reader = EnvironmentReader(environment)
        try reader.apply(to: &self)
    }

    /// The resource's attributes as exported: ``resourceAttributes``, `service.name`, and the
    /// `telemetry.sdk.*` attributes.
    var resolvedResourceAttributes: [(String, String)] {
        var attributes = resourceAttributes
        attributes["service.name"] = serviceName ?? resourceAttributes["service.name"] ?? "unknown_service"
        attributes["telemetry.sdk.name"] = OTLPLibrary.name
        attributes["telemetry.sdk.language"] = "swift"
        attributes["telemetry.sdk.version"] = OTLPLibrary.version
        return attributes.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// The library's name and version as reported in the resource and the instrumentation scope.
enum OTLPLibrary {
    static let name = "CourierOTLP"
    static let version = "1.0.0"
}
