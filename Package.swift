// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "courier",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Courier", targets: ["Courier"]),
        .library(name: "CourierMemory", targets: ["CourierMemory"]),
        .library(name: "CourierRedis", targets: ["CourierRedis"]),
        .library(name: "CourierNATS", targets: ["CourierNATS"]),
        .library(name: "CourierKafka", targets: ["CourierKafka"]),
        .library(name: "CourierRabbit", targets: ["CourierRabbit"]),
        .library(name: "CourierTraceView", targets: ["CourierTraceView"]),
        .library(name: "CourierOTLP", targets: ["CourierOTLP"]),
        .library(name: "CourierTesting", targets: ["CourierTesting"]),
        .library(name: "CourierHealth", targets: ["CourierHealth"]),
        .library(name: "CourierAsyncAPI", targets: ["CourierAsyncAPI"]),
        .executable(name: "courier-demo", targets: ["courier-demo"]),
        .executable(name: "courier-bench", targets: ["courier-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // TLS for broker connections (already in the graph through swift-otel's OTLP/HTTP exporter).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Attribute names only; the messaging names live behind the "Experimental" trait,
        // which asks for a pin to the minor version.
        .package(
            url: "https://github.com/swift-otel/swift-otel-semantic-conventions.git",
            .upToNextMinor(from: "1.44.0"),
            traits: ["Experimental"]
        ),
        // Exporting (OTLP gRPC and HTTP): used by the demo and the benchmark, never by the libraries.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0"),
        // CourierOTLP's exporters (already in the graph through swift-otel).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        // CourierHealth's HTTP routes (readiness and liveness); only that optional module depends on it.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // CourierAsyncAPI's YAML output; only that optional module depends on it.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "Courier",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "OTelSemanticConventions", package: "swift-otel-semantic-conventions"),
            ]
        ),
        .target(
            name: "CourierMemory",
            dependencies: [
                "Courier",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "CourierRedis",
            dependencies: [
                "Courier",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // nats.c, the official NATS client, from the system (Debian: libnats-dev).
        .systemLibrary(
            name: "CNats",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        .target(
            name: "CourierNATS",
            dependencies: [
                "Courier", "CNats",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // librdkafka, the Kafka C client, from the system (Debian: librdkafka-dev).
        .systemLibrary(
            name: "CKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "CourierKafka",
            dependencies: [
                "Courier", "CKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // RabbitMQ: an AMQP 0-9-1 client of our own on SwiftNIO.
        .target(
            name: "CourierRabbit",
            dependencies: [
                "Courier",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Test helpers for applications (TestBroker) and the transport conformance suite.
        .target(
            name: "CourierTesting",
            dependencies: [
                "Courier", "CourierMemory",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "CourierTraceView",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // A lean OTLP tracer for high message rates: spans into a locked buffer, one export task per
        // batch, OTLP/HTTP and OTLP/gRPC with a hand-written protobuf encoder. Optional; the core never
        // depends on it.
        .target(
            name: "CourierOTLP",
            dependencies: [
                // AsyncBuffer, the span queue's wake-up signal.
                "Courier",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ]
        ),
        // Readiness and liveness routes for orchestrators, on Hummingbird 2. Optional; the core never
        // depends on it.
        .target(
            name: "CourierHealth",
            dependencies: [
                "Courier",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The service describes itself: AsyncAPI documents (JSON, YAML), a page of its own, their
        // Hummingbird routes and a command that writes them.
        .target(
            name: "CourierAsyncAPI",
            dependencies: [
                "Courier",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "courier-demo",
            dependencies: [
                "Courier", "CourierMemory", "CourierRedis", "CourierNATS", "CourierKafka", "CourierRabbit", "CourierTraceView", "CourierAsyncAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Starting programs without Foundation's Process (its pipe handlers crash libdispatch under
        // load): the test suite's and the benchmark's support, not a product.
        .target(name: "CourierChildProcess"),
        .executableTarget(
            name: "courier-bench",
            dependencies: [
                "Courier", "CourierChildProcess", "CourierMemory", "CourierRedis", "CourierNATS", "CNats", "CourierKafka", "CKafka", "CourierRabbit", "CourierOTLP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The README's examples, compiled with every build so they cannot rot.
        .target(
            name: "CourierExamples",
            dependencies: [
                "Courier", "CourierMemory", "CourierRedis", "CourierNATS", "CourierKafka", "CourierRabbit", "CourierTesting",
                "CourierOTLP", "CourierHealth", "CourierAsyncAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        // Fuzzing (`make fuzz`): the parsers' harnesses, shared by the fuzz executable and the
        // smoke test of `make test`. Only the modules under test, so the fuzz build stays lean.
        .target(
            name: "CCourierFuzz",
            dependencies: ["CNats"]
        ),
        .target(
            name: "CourierFuzzSupport",
            dependencies: [
                "Courier", "CourierRedis", "CourierNATS", "CNats", "CCourierFuzz", "CourierKafka", "CourierRabbit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // Instructions per message under callgrind (`make bench-instructions`, the CI gate): a
        // synchronous harness, since valgrind crashes in Swift's async `main`.
        .target(name: "CCallgrind"),
        .executableTarget(
            name: "courier-instructions",
            dependencies: [
                "Courier", "CourierMemory", "CourierOTLP", "CourierRedis", "CourierRabbit", "CourierKafka", "CourierNATS", "CNats", "CCallgrind",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "courier-worker",
            dependencies: ["Courier", "CourierRedis", "CourierNATS", "CourierKafka", "CourierRabbit"]
        ),
        .executableTarget(
            name: "courier-fuzz",
            dependencies: ["CourierFuzzSupport", "CCourierFuzz"]
        ),
        .testTarget(
            name: "CourierTests",
            dependencies: [
                "Courier", "CourierMemory", "CourierRedis", "CourierNATS", "CourierKafka", "CourierRabbit", "CourierTraceView", "CourierTesting", "CourierFuzzSupport",
                "CourierExamples", "CourierOTLP", "CourierHealth", "CourierChildProcess", "CourierAsyncAPI",
                // The demo's tracing setup (its export report and shutdown bound), tested in place.
                "courier-demo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // EmbeddedChannel: the Redis connection's handler tested frame by frame.
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
