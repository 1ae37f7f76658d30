/// Where a broker's ``Broker/run()`` is: what liveness and readiness checks read.
///
/// A struct with named values, not an enum, so a later release can add steps without breaking a
/// `switch` in an application.
public struct BrokerLifecycle: Sendable, Hashable, CustomStringConvertible {
    private let name: String

    private init(_ name: String) { self.name = name }

    /// Created; ``Broker/run()`` has not been called.
    public static let idle = BrokerLifecycle("idle")
    /// ``Broker/run()`` is connecting and subscribing.
    public static let starting = BrokerLifecycle("starting")
    /// Connected, with every subscriber subscribed.
    public static let running = BrokerLifecycle("running")
    /// Intake stopped; in-flight messages are finishing.
    public static let stopping = BrokerLifecycle("stopping")
    /// ``Broker/run()`` returned (or failed to start).
    public static let stopped = BrokerLifecycle("stopped")

    public var description: String { name }
}
