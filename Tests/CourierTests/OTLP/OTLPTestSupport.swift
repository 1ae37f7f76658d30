import CourierOTLP
import ServiceLifecycle
import ServiceLifecycleTestKit
import Tracing

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

/// An instant at a fixed time, for events whose timestamp the test checks.
struct FixedInstant: TracerInstant {
    var nanosecondsSinceEpoch: UInt64
    static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

extension OTLPTracerConfiguration {
    /// A configuration for tests: one service name, the exporter given. Its shutdown flush and
    /// exports may take up to 30 s: a liveness bound (a gRPC connection and an export on a busy
    /// machine can take seconds), not a timing; the tests of the bounds set their own.
    static func test(_ exporter: OTLPExporterChoice, service: String = "courier-otlp-tests") -> OTLPTracerConfiguration {
        var configuration = OTLPTracerConfiguration()
        configuration.serviceName = service
        configuration.exporter = exporter
        configuration.sampler = .alwaysOn
        configuration.shutdownTimeout = .seconds(30)
        configuration.exportTimeout = .seconds(30)
        return configuration
    }
}
