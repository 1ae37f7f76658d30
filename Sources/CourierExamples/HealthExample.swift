import Courier
import CourierHealth
import CourierRedis
import Hummingbird
import Logging
import ServiceLifecycle

// README: "Health: probes for orchestrators".
func healthProbes() async throws {
    let broker = try RedisBroker(url: "redis://127.0.0.1:6379")
    broker.subscriber(.stream("orders", group: "billing")) { (order: String, context) in
        context.logger.info("billing \(order)")
    }

    // A round trip to the server, and what the client knows without one.
    try await broker.ping(timeout: .seconds(2))
    print(broker.connectionState)   // connected, or e.g. "reconnecting (Redis: cannot connect to …)"

    // GET /health/live and /health/ready on a port of their own, next to the app.
    let health = CourierHealthService(check: CourierHealthCheck(brokers: [broker], pingTimeout: .seconds(2)), port: 8081)
    let group = ServiceGroup(
        services: [CourierApp(brokers: [broker]), health],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: Logger(label: "billing")
    )
    try await group.run()
}

// README: "Health: routes on your own Hummingbird router".
func healthRoutesOnOwnRouter(broker: RedisBroker) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("orders") { _, _ in "[]" }
    router.addCourierHealthRoutes(CourierHealthCheck(brokers: [broker]))   // /health/live, /health/ready
    return router
}
