/// A subscription's destination as telemetry reports it.
public struct SubscribedDestination: Sendable, Hashable {
    /// `messaging.destination.name`.
    public var name: String
    /// `messaging.destination.template`, for wildcard or parameterised destinations.
    public var template: String?
    /// `messaging.consumer.group.name`, where the broker has consumer groups.
    public var consumerGroup: String?
    /// `messaging.destination.subscription.name`, where the broker names subscriptions.
    public var subscriptionName: String?
    /// Whether the destination is temporary (a reply inbox).
    public var isTemporary: Bool

    public init(
        name: String,
        template: String? = nil,
        consumerGroup: String? = nil,
        subscriptionName: String? = nil,
        isTemporary: Bool = false
    ) {
        self.name = name
        self.template = template
        self.consumerGroup = consumerGroup
        self.subscriptionName = subscriptionName
        self.isTemporary = isTemporary
    }
}
