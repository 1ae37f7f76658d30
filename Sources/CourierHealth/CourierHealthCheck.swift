public import Courier

/// Checks brokers the way an orchestrator asks: is the process alive, and is it ready for work.
///
/// - Liveness: every broker's ``Courier/Broker/run()`` is alive (not stopped); a broker whose
///   transport's run loop failed stops, and so fails liveness. A broker that has not started yet
///   or is draining at shutdown is alive.
/// - Readiness: every broker runs with every subscriber subscribed and answers
///   ``Courier/Broker/ping(timeout:)`` within ``pingTimeout``. The brokers are pinged at once, so
///   a check takes at most one ping timeout.
///
/// ```swift
/// let health = CourierHealthCheck(brokers: [redis, nats])
/// let report = await health.readiness()
/// ```
public struct CourierHealthCheck: Sendable {
    /// The brokers checked, in report order.
    public var brokers: [any BrokerHealthReporting]
    /// How long each broker's ping may take before readiness fails.
    public var pingTimeout: Duration

    /// A check of `brokers`, each ping bounded by `pingTimeout`. Keep it under the probe's own
    /// timeout (Kubernetes' `timeoutSeconds` is 1 s by default: raise that, or lower this), so
    /// that a slow server yields the report naming it rather than a probe timeout.
    public init(brokers: [any BrokerHealthReporting], pingTimeout: Duration = .seconds(2)) {
        self.brokers = brokers
        self.pingTimeout = pingTimeout
    }

    /// Whether every broker is alive, without a round trip to any server.
    public func liveness() -> HealthReport {
        HealthReport(
            brokers: brokers.map { broker in
                let lifecycle = broker.lifecycle
                let alive = lifecycle != .stopped
                return HealthReport.BrokerReport(
                    broker,
                    lifecycle: lifecycle,
                    healthy: alive,
                    reason: alive ? nil : "the broker stopped"
                )
            }
        )
    }

    /// Whether every broker is running, subscribed and answers a ping in time.
    public func readiness() async -> HealthReport {
        let timeout = pingTimeout
        let reports = await withTaskGroup(of: (Int, HealthReport.BrokerReport).self) { group in
            for (index, broker) in brokers.enumerated() {
                group.addTask {
                    let lifecycle = broker.lifecycle
                    guard lifecycle == .running else {
                        return (index, HealthReport.BrokerReport(broker, lifecycle: lifecycle, healthy: false, reason: "the broker is \(lifecycle), not running"))
                    }
                    do {
                        try await broker.ping(timeout: timeout)
                        return (index, HealthReport.BrokerReport(broker, lifecycle: lifecycle, healthy: true, reason: nil))
                    } catch {
                        return (index, HealthReport.BrokerReport(broker, lifecycle: lifecycle, healthy: false, reason: Self.reason(error)))
                    }
                }
            }
            var reports: [(Int, HealthReport.BrokerReport)] = []
            for await report in group { reports.append(report) }
            return reports.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return HealthReport(brokers: reports)
    }

    /// The ping error's text, with the transport's own error when it was wrapped.
    private static func reason(_ error: any Error) -> String {
        guard let error = error as? CourierError else { return "\(error)" }
        return error.underlying.map { "\(error.message): \($0)" } ?? error.message
    }
}
