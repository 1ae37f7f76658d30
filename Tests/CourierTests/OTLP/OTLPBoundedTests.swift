import CourierOTLP
import NIOCore
import NIOPosix
import Testing
import Tracing

/// A collector that is down, or that accepts connections and never answers: the tracer never
/// blocks its callers, keeps at most maxQueueSize spans, counts what it drops or fails to send,
/// and its shutdown stays bounded.
@Suite("CourierOTLP: bounded when the collector is down or silent")
struct OTLPBoundedTests {
    /// A liveness bound on top of shutdownTimeout: generous, since the machine is shared; what it
    /// proves is that shutdown does not wait for the (much longer) export timeout.
    static let slack: Duration = .seconds(20)

    /// A TCP server that accepts connections and never writes a byte.
    final class SilentServer: Sendable {
        let channel: any Channel
        var port: Int { channel.localAddress?.port ?? 0 }

        init() async throws {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { _ in MultiThreadedEventLoopGroup.singleton.next().makeSucceededVoidFuture() }
                .bind(host: "127.0.0.1", port: 0)
                .get()
        }

        func close() async {
            try? await channel.close()
        }
    }

    static func exporter(_ transport: String, port: Int) -> OTLPExporterChoice {
        transport == "http" ? .httpProtobuf(endpoint: "http://127.0.0.1:\(port)/v1/traces") : .grpc(endpoint: "http://127.0.0.1:\(port)")
    }

    @Test("nothing runs the export: the queue keeps maxQueueSize spans and drops exactly the overflow")
    func overflowIsDroppedAndCounted() {
        var configuration = OTLPTracerConfiguration.test(.none)
        configuration.maxQueueSize = 10
        configuration.maxExportBatchSize = 5
        let tracer = OTLPTracer(configuration: configuration)
        for index in 0..<25 {
            tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
            #expect(tracer.queuedSpanCount <= 10)
        }
        #expect(tracer.queuedSpanCount == 10)
        #expect(tracer.droppedSpanCount == 15)
    }

    @Test("collector down: run() returns within the shutdown bound; every span is exported, failed or dropped, and counted", arguments: ["http", "grpc"])
    func collectorDown(_ transport: String) async throws {
        // Port 1 on loopback: nothing listens there (binding it needs privileges).
        var configuration = OTLPTracerConfiguration.test(Self.exporter(transport, port: 1))
        configuration.maxQueueSize = 10
        configuration.maxExportBatchSize = 5
        configuration.exportTimeout = .seconds(60)
        configuration.shutdownTimeout = .seconds(1)
        let tracer = OTLPTracer(configuration: configuration)
        for index in 0..<25 {
            tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
        }
        #expect(tracer.droppedSpanCount == 15)
        let start = ContinuousClock.now
        try await withRunningService(tracer) {}
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < configuration.shutdownTimeout + Self.slack, "run() took \(elapsed) to shut down")
        #expect(tracer.exportedSpanCount == 0)
        // Whether an export was refused before the deadline, or cut short by it, or never begun
        // (a loaded machine) is a race with the 1 s bound: `refusedExports` waits for it instead.
        #expect(tracer.droppedSpanCount + tracer.failedSpanCount == 25)
        #expect(tracer.queuedSpanCount == 0)
        // Spans ended after shutdown are dropped and counted too, never queued; a flush then returns at once.
        tracer.startSpan("late", context: .topLevel, ofKind: .internal).end()
        #expect(tracer.queuedSpanCount == 0)
        #expect(tracer.droppedSpanCount + tracer.failedSpanCount == 26)
        await tracer.flush()
    }

    @Test("collector down: each refused export is counted with its spans, within the export timeout", arguments: ["http", "grpc"])
    func refusedExports(_ transport: String) async throws {
        var configuration = OTLPTracerConfiguration.test(Self.exporter(transport, port: 1))
        configuration.maxQueueSize = 10
        configuration.maxExportBatchSize = 5
        // AsyncHTTPClient retries a refused connection until this timeout, then fails with the refusal.
        configuration.exportTimeout = .seconds(2)
        let tracer = OTLPTracer(configuration: configuration)
        try await withRunningService(tracer) {
            for index in 0..<10 {
                tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
            }
            await tracer.flush()
            #expect(tracer.failedExportCount == 2)
            #expect(tracer.failedSpanCount == 10)
            #expect(tracer.queuedSpanCount == 0)
            #expect(tracer.exportedSpanCount == 0)
        }
        #expect(tracer.droppedSpanCount == 0)
    }

    @Test("a collector that accepts and never answers: spans keep being recorded without blocking, shutdown stays bounded", arguments: ["http", "grpc"])
    func silentCollector(_ transport: String) async throws {
        let server = try await SilentServer()
        var configuration = OTLPTracerConfiguration.test(Self.exporter(transport, port: server.port))
        configuration.maxQueueSize = 50
        configuration.maxExportBatchSize = 10
        configuration.exportTimeout = .seconds(60)
        configuration.shutdownTimeout = .seconds(1)
        let tracer = OTLPTracer(configuration: configuration)
        let total = 500
        let start = ContinuousClock.now
        try await withRunningService(tracer) {
            for index in 0..<total {
                tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end()
                #expect(tracer.queuedSpanCount <= 50)
                if index % 50 == 0 { await Task.yield() }
            }
        }
        let elapsed = ContinuousClock.now - start
        await server.close()
        #expect(elapsed < configuration.shutdownTimeout + Self.slack, "run() took \(elapsed) to shut down")
        #expect(tracer.exportedSpanCount == 0)
        #expect(tracer.queuedSpanCount == 0)
        // Conservation: every span was dropped (queue full, or left at the shutdown deadline) or in a failed export.
        #expect(tracer.droppedSpanCount + tracer.failedSpanCount == total)
        #expect(tracer.droppedSpanCount >= total - 50 - 10 * tracer.failedExportCount)
    }
}
