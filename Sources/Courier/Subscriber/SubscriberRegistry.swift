/// Where subscribers are declared: a ``Broker``, or a ``Router`` that brokers include.
///
/// Both offer the same `subscriber(…)` declarations (see ``SubscriberBuilder``); a router adds its
/// prefix to the names given as strings.
public protocol SubscriberRegistry<Transport>: Sendable {
    associatedtype Transport: BrokerTransport

    /// Adds a declared subscriber. Only the core declares them, through ``SubscriberBuilder``.
    func register(_ definition: SubscriberDefinition<Transport.Source>)

    /// The name a subscriber declared with the string `name` listens to.
    func subscriberName(_ name: String) -> String
    /// The name a publisher declared with the string `name` publishes to.
    func publisherName(_ name: String) -> String
}

extension SubscriberRegistry {
    public func subscriberName(_ name: String) -> String { name }
    public func publisherName(_ name: String) -> String { name }
}

/// A declared subscriber: where it listens and what it runs. Opaque outside the core.
public struct SubscriberDefinition<Source: SubscriptionSource>: Sendable {
    var source: Source
    var options: SubscriberOptions
    var batch: BatchOptions?
    var handle: ConsumeNext
    /// Its handlers' types and publishers, for ``SubscriberDeclaration``.
    var declaredHandlers: @Sendable () -> [HandlerDeclaration]
}
