import CourierOTLP
import Testing

/// `OTEL_*` variables, each one, and the errors for bad values.
@Suite("CourierOTLP: OTEL_* configuration")
struct OTLPConfigurationTests {
    @Test("defaults are the specification's")
    func defaults() throws {
        let configuration = try OTLPTracerConfiguration(environment: [:])
        #expect(configuration.exporter == .httpProtobuf(endpoint: "http://localhost:4318/v1/traces"))
        #expect(configuration.sampler == .parentBased(root: .alwaysOn))
        #expect(configuration.serviceName == nil)
        #expect(configuration.maxQueueSize == 2048 && configuration.maxExportBatchSize == 512)
        #expect(configuration.scheduleDelay == .seconds(5) && configuration.exportTimeout == .seconds(10))
        #expect(configuration.headers.isEmpty && configuration.resourceAttributes.isEmpty)
    }

    @Test("every variable is read")
    func everyVariable() throws {
        let configuration = try OTLPTracerConfiguration(environment: [
            "OTEL_SERVICE_NAME": "orders",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod, service.version=1.2%2C3",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc,x-tenant=acme",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=def%3D",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "7000",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
        ])
        #expect(configuration.serviceName == "orders")
        #expect(configuration.resourceAttributes == ["deployment.environment.name": "prod", "service.version": "1.2,3"])
        #expect(configuration.sampler == .parentBased(root: .traceIDRatio(0.1)))
        #expect(configuration.exporter == .grpc(endpoint: "http://collector:4317"))
        #expect(configuration.headers == ["x-api-key": "def=", "x-tenant": "acme"])
        #expect(configuration.exportTimeout == .milliseconds(7000))
        #expect(configuration.maxQueueSize == 100 && configuration.maxExportBatchSize == 20)
        #expect(configuration.scheduleDelay == .milliseconds(250))
    }

    @Test("endpoints: the generic one gets /v1/traces for HTTP, the traces one is used as is and wins")
    func endpoints() throws {
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"]).exporter
            == .httpProtobuf(endpoint: "http://collector:4318/v1/traces"))
        #expect(try OTLPTracerConfiguration(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:443/custom",
        ]).exporter == .httpProtobuf(endpoint: "https://traces.example:443/custom"))
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"]).exporter
            == .grpc(endpoint: "http://localhost:4317"))
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_TRACES_EXPORTER": "none"]).exporter == OTLPExporterChoice.none)
        // The traces timeout wins over the generic one; OTEL_BSP_EXPORT_TIMEOUT bounds both.
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_EXPORTER_OTLP_TIMEOUT": "7000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3000"]).exportTimeout == .milliseconds(3000))
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_EXPORTER_OTLP_TIMEOUT": "7000", "OTEL_BSP_EXPORT_TIMEOUT": "2000"]).exportTimeout == .milliseconds(2000))
        // service.name from the resource attributes when OTEL_SERVICE_NAME is absent.
        #expect(try OTLPTracerConfiguration(environment: ["OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource"]).resourceAttributes["service.name"] == "from-resource")
    }

    @Test("each sampler name")
    func samplers() throws {
        let cases: [(String, String?, OTLPSampler)] = [
            ("always_on", nil, .alwaysOn),
            ("always_off", nil, .alwaysOff),
            ("traceidratio", "0.5", .traceIDRatio(0.5)),
            ("traceidratio", nil, .traceIDRatio(1)),
            ("parentbased_always_on", nil, .parentBased(root: .alwaysOn)),
            ("parentbased_always_off", nil, .parentBased(root: .alwaysOff)),
            ("parentbased_traceidratio", "0.25", .parentBased(root: .traceIDRatio(0.25))),
        ]
        for (name, argument, sampler) in cases {
            var environment = ["OTEL_TRACES_SAMPLER": name]
            environment["OTEL_TRACES_SAMPLER_ARG"] = argument
            #expect(try OTLPTracerConfiguration(environment: environment).sampler == sampler, "\(name)")
        }
    }

    @Test("a bad value throws an error naming its variable", arguments: [
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "lots"),
        ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1.5"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ])
    func badValue(_ variable: String, _ value: String) {
        var environment = [variable: value]
        if variable == "OTEL_TRACES_SAMPLER_ARG" { environment["OTEL_TRACES_SAMPLER"] = "traceidratio" }
        #expect {
            try OTLPTracerConfiguration(environment: environment)
        } throws: { error in
            guard let error = error as? OTLPConfigurationError else { return false }
            return error.variable == variable && "\(error)".hasPrefix("\(variable): ")
        }
    }

    @Test("batch size above the queue size throws")
    func batchAboveQueue() {
        #expect(throws: OTLPConfigurationError.self) {
            try OTLPTracerConfiguration(environment: ["OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20"])
        }
    }

    @Test("a malformed headers variable throws without quoting any header value", arguments: ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"])
    func headersStaySecret(_ variable: String) {
        #expect {
            try OTLPTracerConfiguration(environment: [variable: "authorization=Bearer s3cr3t-token,garbage-s3cr3t"])
        } throws: { error in
            guard let error = error as? OTLPConfigurationError else { return false }
            let text = "\(error) \(String(reflecting: error))"
            return error.variable == variable && !text.contains("s3cr3t")
        }
    }
}
