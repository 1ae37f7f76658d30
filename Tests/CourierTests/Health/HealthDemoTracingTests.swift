import Courier
@testable import courier_demo
import Foundation
import Logging
import ServiceLifecycle
import Testing
import Tracing

/// The demo's tracing: what it reports about its exports is what swift-otel did, and its
/// shutdown flush is bounded whatever the collector does.
@Suite("Health: the demo's export report and shutdown bound")
struct HealthDemoTracingTests {
    /// Runs the tracing's service group, ends one span, shuts down; throws ``TimedOut`` when the
    /// shutdown outlives `bound` (a liveness bound: swift-otel's own default would take 10 s).
    func exportOneSpan(_ tracing: DemoTracing, bound: Duration) async throws {
        let group = tracing.serviceGroup(app: nil, appShutdownTimeout: .zero, logger: Logger(label: "demo-test"))
        let running = Task { try await tracing.run(group) }
        tracing.tracer.startSpan("work").end()
        await group.triggerGracefulShutdown()
        do {
            try await withTimeout(bound, error: { TimedOut() }) { try await running.value }
        } catch {
            running.cancel()
            throw error
        }
    }

    @Test("a collector that is down: the flush stops within its bound and the demo reports the failure, not an export")
    func collectorDown() async throws {
        let port = try HealthPingTests.closedPort()
        let tracing = try DemoTracing(exporting: true, flushTimeout: .milliseconds(500), endpoint: "http://127.0.0.1:\(port)/v1/traces")
        try await exportOneSpan(tracing, bound: .seconds(8))
        #expect(tracing.outcomes.exported == 0)
        // Failed, or (on a machine so loaded that the group cut the flush before the export
        // began) not confirmed: never reported as exported.
        let summary = tracing.exportSummary(endpoint: "http://127.0.0.1:\(port)", protocolName: "http/protobuf")
        #expect(!summary.hasPrefix("exported"), "\(summary)")
        if tracing.outcomes.failed > 0 {
            #expect(summary.hasPrefix("export over OTLP"))
            #expect(summary.contains("failed"))
        }
    }

    @Test("a real collector: the demo reports the batches it took; one that refuses the spans: the rejection")
    func realCollector() async throws {
        let receiver = try await OTLPReceiver()
        let tracing = try DemoTracing(exporting: true, flushTimeout: .seconds(5), endpoint: receiver.httpEndpoint)
        try await exportOneSpan(tracing, bound: .seconds(30))
        #expect(tracing.outcomes.exported >= 1)
        #expect(tracing.outcomes.failed == 0)
        #expect(tracing.outcomes.rejectedSpans == 0)
        #expect(tracing.exportSummary(endpoint: receiver.httpEndpoint, protocolName: "http/protobuf").hasPrefix("exported"))
        await receiver.stop()

        let refusing = try await OTLPReceiver(reject: 100)
        let refused = try DemoTracing(exporting: true, flushTimeout: .seconds(5), endpoint: refusing.httpEndpoint)
        try await exportOneSpan(refused, bound: .seconds(30))
        // OTLP's partial success: the request went through, the spans did not.
        #expect(refused.outcomes.rejectedSpans >= 1)
        let summary = refused.exportSummary(endpoint: refusing.httpEndpoint, protocolName: "http/protobuf")
        #expect(summary.contains("rejected"), "\(summary)")
        #expect(!summary.hasPrefix("exported"))
        await refusing.stop()
    }
}
