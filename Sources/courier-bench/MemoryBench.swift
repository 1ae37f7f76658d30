import Courier
import CourierMemory
import Tracing

/// The in-memory rows of `make bench`: Courier's pipeline with nothing but a bounded queue between
/// publisher and handler, untraced, with the no-op tracer and with each tracer, so the rows show
/// what Courier and tracing themselves cost per message.
struct MemoryBench {
    var workload: BrokerWorkload
    var tracers: [BenchTracer]

    /// The in-memory queue's capacity: a publisher waits when it is full.
    static let capacity = 1024

    func run(rounds: Int) async throws -> [BrokerRow] {
        let scenarios = workload.scenarios(raw: nil, tracers: tracers) { name, middlewares in
            let broker = MemoryBroker(capacity: Self.capacity, middlewares: middlewares)
            return try await workload.runCourier(name, broker: broker, source: MemoryDestination(destination: "bench")) { payload in
                try await broker.publish(payload, to: "bench")
            }
        }
        return try await workload.interleaved(rounds: rounds, scenarios)
    }
}
