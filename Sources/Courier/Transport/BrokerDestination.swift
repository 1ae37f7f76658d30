/// A broker module's typed destination: a Redis list, a JetStream subject, an exchange…
///
/// Broker modules give their transport a `Destination` type with static constructors
/// (`.list("jobs")`, `.jetStream("orders.created")`) holding everything the publish needs (a
/// stream's maximum length, the stream a JetStream subject must belong to), and the publishing
/// API of ``Broker``, ``SubscriberBuilder`` and ``MessageContext`` takes it. The core reads only
/// its name; the transport gets it back, typed, through ``BrokerTransport/destination(of:)``.
/// A destination that adopts ``MessagingSpanAttributes`` adds attributes to publish spans.
public protocol BrokerDestination: Sendable {
    /// The queue, channel, subject or topic.
    var name: String { get }

    /// The transport's default kind of destination named `name`: what a plain name means (a
    /// Redis channel, a core NATS subject).
    init(name: String)
}

/// A destination given by its name alone; each transport reads it as its default kind.
public struct NamedDestination: BrokerDestination, Hashable {
    public var name: String

    public init(name: String) {
        self.name = name
    }

    public init(_ name: String) {
        self.name = name
    }
}
