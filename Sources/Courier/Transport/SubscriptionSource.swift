/// A broker's subscription target. Every broker can subscribe to a plain destination name;
/// broker modules add their own options (a consumer group, a pattern, a stream).
public protocol SubscriptionSource: Sendable {
    /// A source for a plain destination name.
    init(destination: String)
    /// How the source appears in telemetry and logs.
    var subscribedDestination: SubscribedDestination { get }
}
