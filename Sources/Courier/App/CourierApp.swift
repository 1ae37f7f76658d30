public import Logging
public import ServiceLifecycle
public import UnixSignals
import Synchronization

/// A broker ``CourierApp`` can run: every ``Broker`` is one.
public protocol RunnableBroker: Sendable {
    /// Runs until intake stops and in-flight messages have finished.
    func run() async throws
    /// Stops taking new messages.
    func stopIntake() async
    /// Returns once the broker runs with every subscriber subscribed (true), or failed to start
    /// or stopped first (false).
    func waitUntilRunning() async -> Bool
}

extension Broker: RunnableBroker {}

/// Runs brokers as a swift-service-lifecycle `Service`, with FastStream's four lifecycle hooks.
///
/// - ``onStartup(_:)``: before the brokers connect (FastStream's `on_startup`); a throwing hook
///   keeps the app from starting.
/// - ``afterStartup(_:)``: once every broker runs with its subscribers subscribed, so a hook can
///   publish (`after_startup`); a throwing hook shuts the app down and its error is thrown.
/// - ``onShutdown(_:)``: when graceful shutdown begins, while the brokers are still connected and
///   before intake stops (`on_shutdown`).
/// - ``afterShutdown(_:)``: after every broker stopped, also when one failed (`after_shutdown`).
///
/// On graceful shutdown (SIGTERM, or the service group shutting down) every broker stops taking
/// messages, in-flight messages get up to ``shutdownTimeout`` to finish, and what is still running
/// then is cancelled (its handlers see `CancellationError`; at-least-once brokers redeliver).
public struct CourierApp: Service {
    /// A lifecycle hook.
    public typealias Hook = @Sendable () async throws -> Void

    public var brokers: [any RunnableBroker]
    /// How long in-flight messages may take to finish after shutdown began (the
    /// ``onShutdown(_:)`` hooks run before this starts).
    public var shutdownTimeout: Duration
    public var logger: Logger
    private var startupHooks: [Hook] = []
    private var afterStartupHooks: [Hook] = []
    private var shutdownHooks: [Hook] = []
    private var afterShutdownHooks: [Hook] = []

    public init(
        brokers: [any RunnableBroker],
        shutdownTimeout: Duration = .seconds(15),
        logger: Logger = Logger(label: "courier.app")
    ) {
        self.brokers = brokers
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// Adds a hook that runs before the brokers connect; a throwing hook stops the app from starting.
    public mutating func onStartup(_ hook: @escaping Hook) {
        startupHooks.append(hook)
    }

    /// Adds a hook that runs once every broker is running with its subscribers subscribed:
    /// publishing works and subscribers receive. A throwing hook shuts the app down.
    public mutating func afterStartup(_ hook: @escaping Hook) {
        afterStartupHooks.append(hook)
    }

    /// Adds a hook that runs when graceful shutdown begins, while the brokers are still connected
    /// (a hook may publish a last message). Its errors are logged; shutdown goes on.
    public mutating func onShutdown(_ hook: @escaping Hook) {
        shutdownHooks.append(hook)
    }

    /// Adds a hook that runs after every broker has stopped, whether they stopped cleanly or not
    /// (close a database pool here). Its errors are logged.
    public mutating func afterShutdown(_ hook: @escaping Hook) {
        afterShutdownHooks.append(hook)
    }

    /// Runs the brokers until graceful shutdown, then drains them (see the type's overview).
    public func run() async throws {
        for hook in startupHooks { try await hook() }
        let brokers = self.brokers
        let shutdownTimeout = self.shutdownTimeout
        let logger = self.logger
        let (afterStartupHooks, shutdownHooks) = (self.afterStartupHooks, self.shutdownHooks)

        /// Stops intake everywhere once, after the on-shutdown hooks.
        @Sendable func shutDown() async {
            await Self.runLogged(shutdownHooks, "an on-shutdown hook failed", logger)
            for broker in brokers { await broker.stopIntake() }
        }

        enum Outcome {
            case drained
            case timedOut
            case watcherCancelled
            case started
        }
        // Set by a failing after-startup hook, which then stops the brokers: the drain may finish
        // before the hook's task reports, so the error is kept here, not in the task's result.
        let hookFailure = FirstError()
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    try await withThrowingDiscardingTaskGroup { brokerGroup in
                        for broker in brokers { brokerGroup.addTask { try await broker.run() } }
                    }
                    return .drained
                }
                if !afterStartupHooks.isEmpty {
                    group.addTask {
                        for broker in brokers {
                            guard await broker.waitUntilRunning() else { return .started }
                        }
                        do {
                            for hook in afterStartupHooks { try await hook() }
                        } catch {
                            logger.error("an after-startup hook failed; shutting down", metadata: ["error": "\(error)"])
                            hookFailure.record(error)
                            for broker in brokers { await broker.stopIntake() }
                        }
                        return .started
                    }
                }
                group.addTask {
                    do {
                        try await gracefulShutdown()
                    } catch {
                        return .watcherCancelled
                    }
                    logger.info("graceful shutdown: stopping intake and finishing in-flight messages")
                    await shutDown()
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
                    case .watcherCancelled, .started:
                        continue
                    }
                }
            }
        } catch {
            failure = error
        }
        await Self.runLogged(afterShutdownHooks, "an after-shutdown hook failed", logger)
        if let failure = failure ?? hookFailure.error { throw failure }
    }

    private static func runLogged(_ hooks: [Hook], _ message: Logger.Message, _ logger: Logger) async {
        for hook in hooks {
            do {
                try await hook()
            } catch {
                logger.error(message, metadata: ["error": "\(error)"])
            }
        }
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

/// The first error recorded, shared between tasks.
private final class FirstError: Sendable {
    private let first = Mutex<(any Error)?>(nil)

    func record(_ error: any Error) {
        first.withLock { if $0 == nil { $0 = error } }
    }

    var error: (any Error)? { first.withLock { $0 } }
}
