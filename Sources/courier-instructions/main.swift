import CCallgrind
import Courier
import CourierMemory
import CourierOTLP
import Dispatch
import Foundation
import Tracing

// `courier-instructions SCENARIO [MESSAGES]`: sends MESSAGES messages (1,000 by default) one after
// another through a scenario's pipeline, after a warm-up, counting instructions only around them
// when run under callgrind (`scripts/instructions.sh` runs it so and divides by MESSAGES).
//
// The entry point is synchronous: valgrind crashes in Swift's async `main`. The work runs in a
// detached task, which the main thread waits for.

/// What one message goes through.
enum Scenario: String, CaseIterable {
    /// Publish to the in-memory broker, one subscriber, a `String` body; no telemetry.
    case memory
    /// The same with `TelemetryMiddleware` over the no-op tracer: what instrumentation costs
    /// before any span is recorded.
    case memoryNoOpTracer = "memory-noop-tracer"
    /// The same with CourierOTLP recording both spans (send and process) and exporting them to
    /// nowhere: the encoding is counted (its share is read from the profile by function).
    case memoryOTLP = "memory-otlp"
}

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let scenario = Scenario(rawValue: name) else {
    print("usage: courier-instructions \(Scenario.allCases.map(\.rawValue).joined(separator: "|")) [MESSAGES]")
    exit(2)
}
let messages = arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000

let finished = DispatchSemaphore(value: 0)
Task.detached {
    do {
        try await run(scenario, messages: messages)
    } catch {
        print("courier-instructions: \(scenario.rawValue) failed: \(error)")
        exit(1)
    }
    finished.signal()
}
finished.wait()

func run(_ scenario: Scenario, messages: Int) async throws {
    var tracer: OTLPTracer?
    let middlewares: [any CourierMiddleware]
    switch scenario {
    case .memory:
        middlewares = []
    case .memoryNoOpTracer:
        middlewares = [TelemetryMiddleware(tracer: NoOpTracer())]
    case .memoryOTLP:
        var configuration = OTLPTracerConfiguration()
        configuration.exporter = .none
        configuration.sampler = .alwaysOn
        tracer = OTLPTracer(configuration: configuration)
        middlewares = [TelemetryMiddleware(tracer: tracer)]
    }
    let broker = MemoryBroker(middlewares: middlewares)
    let (handled, handledOne) = AsyncStream.makeStream(of: Void.self)
    broker.subscriber("orders") { (_: String, _) in handledOne.yield() }
    let exporting = tracer.map { tracer in Task { try await tracer.run() } }
    let running = Task { try await broker.run() }
    await broker.waitUntilSubscribed()

    var iterator = handled.makeAsyncIterator()
    func send(_ count: Int) async throws {
        for _ in 0..<count {
            try await broker.publish("order placed", to: "orders")
            _ = await iterator.next()
        }
    }
    // Warm-up: caches, lazily made state, the first allocations of each size.
    try await send(200)
    courier_callgrind_start()
    try await send(messages)
    courier_callgrind_stop(scenario.rawValue)

    await broker.stopIntake()
    running.cancel()
    _ = try? await running.value
    exporting?.cancel()
}
