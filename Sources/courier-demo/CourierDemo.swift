import ArgumentParser
import Courier
import CourierAsyncAPI
import CourierMemory
import CourierNATS
import CourierKafka
import CourierRabbit
import CourierRedis
import CourierTraceView
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// `make demo`: the seed pipeline first → second → third, traced with swift-otel, drawn as a
/// waterfall in the terminal, exported over OTLP when an endpoint is configured.
@main
struct CourierDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-demo",
        abstract: "Runs the first → second → third pipeline with tracing and shows the trace."
    )

    @Option(help: "How many messages to send through the pipeline.")
    var messages = 1

    @Option(name: .customLong("spans-json"), help: "Write every finished span to this file as JSON.")
    var spansJSON: String?

    @Option(name: .customLong("broker"), help: "The broker to run on: memory, redis://host:port[/db], nats://host:port, kafka://host:port or amqp://user:password@host:port/.")
    var brokerURL = "memory"

    @Option(help: "Span names and attributes: opentelemetry or faststream.")
    var conventions = TelemetryConventions.openTelemetry

    @Option(help: "Seconds to wait for every message to reach third.")
    var timeout = 30

    @Option(
        name: .customLong("flush-timeout"),
        help: "Seconds the OTLP export may take, so the flush at shutdown too, whatever the collector does (default 2, or COURIER_DEMO_FLUSH_TIMEOUT)."
    )
    var flushTimeout: Double?

    @Option(
        name: .customLong("asyncapi"),
        help: "Write the pipeline's AsyncAPI document to this file (.json, .yaml, or .html for the page; '-' for standard output) and exit, without connecting to the broker."
    )
    var asyncAPIPath: String?

    @Option(name: .customLong("asyncapi-version"), help: "The AsyncAPI version of --asyncapi: 3.0.0 or 2.6.0.")
    var asyncAPIVersion = AsyncAPIVersion.v3_0_0.rawValue

    func validate() throws {
        guard messages > 0 else { throw ValidationError("--messages must be at least 1") }
        guard resolvedFlushTimeout != nil else { throw ValidationError("--flush-timeout and COURIER_DEMO_FLUSH_TIMEOUT take seconds above 0") }
        guard brokerURL == "memory" || ["redis://", "nats://", "kafka://", "amqp://"].contains(where: brokerURL.hasPrefix) else {
            throw ValidationError("unsupported broker '\(Redaction.url(brokerURL))': this build runs on 'memory', 'redis://…', 'nats://…', 'kafka://…' and 'amqp://…'")
        }
    }

    func run() async throws {
        if let asyncAPIPath {
            return try writeAsyncAPI(to: asyncAPIPath)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let environment = ProcessInfo.processInfo.environment
        let exporting = environment["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil || environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != nil

        let tracing = try DemoTracing(exporting: exporting, flushTimeout: resolvedFlushTimeout ?? .seconds(2))
        InstrumentationSystem.bootstrap(tracing.tracer)

        let middlewares: [any CourierMiddleware] = [TelemetryMiddleware(conventions: conventions)]
        let failure: (any Error)?
        let brokerName: String
        if brokerURL.hasPrefix("nats://") {
            failure = try await runPipeline(NatsBroker(url: brokerURL, middlewares: middlewares), tracing: tracing)
            brokerName = "NATS (\(Redaction.url(brokerURL)), core subjects)"
        } else if brokerURL.hasPrefix("amqp://") {
            failure = try await runPipeline(RabbitBroker(url: brokerURL, middlewares: middlewares), tracing: tracing)
            brokerName = "RabbitMQ (\(Redaction.url(brokerURL, loneUserInfo: .username)), durable queues)"
        } else if brokerURL.hasPrefix("kafka://") {
            failure = try await runPipeline(KafkaBroker(url: brokerURL, middlewares: middlewares), tracing: tracing)
            brokerName = "Kafka (\(Redaction.url(brokerURL)), topics)"
        } else if brokerURL.hasPrefix("redis://") {
            failure = try await runPipeline(RedisBroker(url: brokerURL, middlewares: middlewares), tracing: tracing)
            brokerName = "Redis (\(Redaction.url(brokerURL)), pub/sub channels)"
        } else {
            failure = try await runPipeline(MemoryBroker(middlewares: middlewares), tracing: tracing)
            brokerName = "the in-memory broker"
        }

        let spans = tracing.finishedSpans()
        print("courier-demo: \(messages) message(s) through first → second → third on \(brokerName), \(conventions.rawValue) conventions\n")
        print(Waterfall.render(spans))
        if let spansJSON {
            try SpanJSON.encode(spans).write(toFile: spansJSON, atomically: true, encoding: .utf8)
            print("wrote \(spans.count) spans to \(spansJSON)")
        }
        if exporting {
            print(
                tracing.exportSummary(
                    endpoint: Redaction.url(environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? ""),
                    protocolName: environment["OTEL_EXPORTER_OTLP_PROTOCOL"] ?? "default protocol"
                )
            )
        } else {
            print("nothing exported: set OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_PROTOCOL=grpc|http/protobuf) to send the trace to Jaeger, Tempo or Zipkin")
        }
        if let failure { throw failure }
    }

    /// The flush bound: `--flush-timeout`, else `COURIER_DEMO_FLUSH_TIMEOUT`, else nil for the
    /// default; nil too for a value that is not a number of seconds above 0 (`validate()` says so).
    var resolvedFlushTimeout: Duration? {
        guard let seconds = flushTimeout ?? ProcessInfo.processInfo.environment["COURIER_DEMO_FLUSH_TIMEOUT"].map({ Double($0) ?? -1 }) else {
            return .seconds(2)
        }
        return seconds > 0 && seconds.isFinite ? .milliseconds(Int64(seconds * 1000)) : nil
    }

    /// `--asyncapi`: the pipeline's document, from its declarations alone (nothing connects).
    private func writeAsyncAPI(to path: String) throws {
        guard let version = AsyncAPIVersion(rawValue: asyncAPIVersion) else {
            throw ValidationError("unknown AsyncAPI version '\(asyncAPIVersion)': 3.0.0 or 2.6.0")
        }
        let file = AsyncAPIFile(output: path, version: version)
        let info = AsyncAPIDocument.Info(title: "courier-demo", version: "1.0.0", description: "The seed pipeline: first → second → third.")
        let broker: any AsyncAPIDescribable
        if brokerURL.hasPrefix("nats://") {
            broker = Self.declarePipeline(on: try NatsBroker(url: brokerURL)) {}
        } else if brokerURL.hasPrefix("amqp://") {
            broker = Self.declarePipeline(on: try RabbitBroker(url: brokerURL)) {}
        } else if brokerURL.hasPrefix("kafka://") {
            broker = Self.declarePipeline(on: try KafkaBroker(url: brokerURL)) {}
        } else if brokerURL.hasPrefix("redis://") {
            broker = Self.declarePipeline(on: try RedisBroker(url: brokerURL)) {}
        } else {
            broker = Self.declarePipeline(on: MemoryBroker()) {}
        }
        try file.write(brokers: [broker], info: info)
    }

    /// Declares first → second → third on `broker`; `arrived` is called for each message third handles.
    @discardableResult
    static func declarePipeline<Transport: BrokerTransport>(on broker: Broker<Transport>, arrived: @escaping @Sendable () -> Void) -> Broker<Transport> {
        broker.subscriber("first", options: SubscriberOptions(asyncAPI: AsyncAPIOptions(name: "first_handler"))).publisher("second").handle {
            (message: String, _) in
            try await Task.sleep(for: .milliseconds(100))
            return message
        }
        broker.subscriber("second", options: SubscriberOptions(asyncAPI: AsyncAPIOptions(name: "second_handler"))).publisher("third").handle {
            (message: String, _) in
            try await Task.sleep(for: .milliseconds(50))
            return message
        }
        broker.subscriber("third", options: SubscriberOptions(asyncAPI: AsyncAPIOptions(name: "third_handler"))) { (_: String, _) in
            try await Task.sleep(for: .milliseconds(75))
            arrived()
        }
        return broker
    }

    /// Runs the seed pipeline on `broker` next to swift-otel's service; returns what went wrong.
    private func runPipeline<Transport: BrokerTransport>(_ broker: Broker<Transport>, tracing: DemoTracing) async throws -> (any Error)? {
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self)
        Self.declarePipeline(on: broker) { arrived.yield() }

        let app = CourierApp(brokers: [broker], shutdownTimeout: .seconds(5))
        // The app drains first, then swift-otel flushes, within the flush bound.
        let group = tracing.serviceGroup(app: app, appShutdownTimeout: app.shutdownTimeout, logger: Logger(label: "courier-demo"))
        let expected = messages
        let timeout = Duration.seconds(self.timeout)
        var failure: (any Error)?
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await tracing.run(group) }
            do {
                await broker.waitUntilSubscribed()
                for index in 1...expected {
                    try await broker.publish("message \(index)", to: "first")
                }
                try await Self.waitForArrivals(arrivals, count: expected, timeout: timeout)
            } catch {
                failure = error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return failure
    }

    static func waitForArrivals(_ arrivals: AsyncStream<Void>, count: Int, timeout: Duration) async throws {
        try await withTimeout(timeout, error: { DemoError("not every message reached 'third' within \(timeout)") }) {
            var reached = 0
            for await _ in arrivals {
                reached += 1
                if reached == count { return }
            }
        }
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension TelemetryConventions: ExpressibleByArgument {}
