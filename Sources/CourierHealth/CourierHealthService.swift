import Courier
public import Logging
public import ServiceLifecycle
import Hummingbird

/// Serves the health routes on a port of their own (`GET /health/live`, `GET /health/ready`),
/// as a swift-service-lifecycle `Service`: put it in the same `ServiceGroup` as the app.
///
/// ```swift
/// let health = CourierHealthService(check: CourierHealthCheck(brokers: [broker]), port: 8081)
/// let group = ServiceGroup(services: [CourierApp(brokers: [broker]), health], logger: logger)
/// ```
///
/// On graceful shutdown it stops serving; readiness turns `503` before that, as the brokers stop.
/// Applications that already run a Hummingbird server add the routes to their own router with
/// `addCourierHealthRoutes(_:path:)` instead.
public struct CourierHealthService: Service {
    /// What the routes check.
    public var check: CourierHealthCheck
    /// The address to listen on; `0.0.0.0` for every interface (what a container's probe needs).
    public var host: String
    /// The port; 0 takes a free one, reported to `onServerRunning`.
    public var port: Int
    /// The routes' prefix: `health` serves `/health/live` and `/health/ready`.
    public var path: String
    /// The HTTP server's logger.
    public var logger: Logger
    /// Called once the server listens, with the port it listens on.
    public var onServerRunning: (@Sendable (Int) async -> Void)?

    /// A service serving `check`'s routes on `host`:`port` under `/{path}`.
    public init(
        check: CourierHealthCheck,
        host: String = "0.0.0.0",
        port: Int = 8080,
        path: String = "health",
        logger: Logger = Logger(label: "courier.health"),
        onServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) {
        self.check = check
        self.host = host
        self.port = port
        self.path = path
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    /// Serves until graceful shutdown (or cancellation).
    public func run() async throws {
        let router = Router()
        router.addCourierHealthRoutes(check, path: RouterPath(path))
        let port = self.port
        let onServerRunning = self.onServerRunning
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                await onServerRunning?(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
        try await application.run()
    }
}
