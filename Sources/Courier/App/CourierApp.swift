public import Logging
public import ServiceLifecycle
public import UnixSignals

/// A broker ``CourierApp`` can run: every ``Broker`` is one.
public protocol RunnableBroker: Sendable {
    /// Runs until intake stops and in-flight messages have finished.
    func run() async throws
    /// Stops taking new messages.
    func stopIntake() async
}

extension Broker: RunnableBroker {}

/// Runs brokers as a swift-service-lifecycle `Service`.
///
/// On graceful shutdown (SIGTERM, or the service group shutting down) every broker stops taking
/// messages, in-flight messages get up to ``shutdownTimeout`` to finish, and what is still running
/// then is cancelled (its handlers see `CancellationError`; at-least-once brokers redeliver).
public struct CourierApp: Service {
    /// A hook run before the brokers start or after they stopped.
    public typealias Hook = @Sendable () async throws -> Void

    public var brokers: [any RunnableBroker]
    /// How long in-flight messages may take to finish after shutdown began.
    public var shutdownTimeout: Duration
    public var logger: Logger
    private var startupHooks: [Hook] = []
    private var shutdownHooks: [Hook] = []

    public init(
        brokers: [any RunnableBroker],
        shutdownTimeout: Duration = .seconds(15),
        logger: Logger = Logger(label: "courier.app")
    ) {
        self.brokers = brokers
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// Adds a hook that runs before the brokers start; a throwing hook stops the app from starting.
    public mutating func onStartup(_ hook: @escaping Hook) {
        startupHooks.append(hook)
    }

    /// Adds a hook that runs after every broker has stopped.
    public mutating func onShutdown(_ hook: @escaping Hook) {
        shutdownHooks.append(hook)
    }

    /// Runs the brokers until graceful shutdown, then drains them (see the type's overview).
    public func run() async throws {
        for hook in startupHooks { try await hook() }
        let brokers = self.brokers
        let shutdownTimeout = self.shutdownTimeout
        let logger = self.logger

        enum Outcome { case drained, timedOut, watcherCancelled }
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask {
                try await withThrowingDiscardingTaskGroup { brokerGroup in
                    for broker in brokers { brokerGroup.addTask { try await broker.run() } }
                }
                return .drained
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                } catch {
                    return .watcherCancelled
                }
                logger.info("graceful shutdown: stopping intake and finishing in-flight messages")
                for broker in brokers { await broker.stopIntake() }
                try await Task.sleep(for: shutdownTimeout)
                return .timedOut
            }
            while let outcome = try await group.next() {
                switch outcome {
                case .drained:
                    group.cancelAll()
                    return
                case .timedOut:
                    logger.warning("in-flight messages did not finish within \(shutdownTimeout); cancelling them")
                    group.cancelAll()
                case .watcherCancelled:
                    continue
                }
            }
        }
        for hook in shutdownHooks { try await hook() }
    }

    /// Runs the app in its own service group that shuts down gracefully on SIGTERM and SIGINT.
    public func runService(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: self)],
                gracefulShutdownSignals: gracefulShutdownSignals,
                logger: logger
            )
        )
        try await group.run()
    }
}
