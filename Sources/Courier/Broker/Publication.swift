public import Logging
public import Tracing

/// Everything that is about to be published to one destination: what flows down the publish path
/// of the middleware chain to the transport.
public struct Publication: Sendable {
    /// The destination (queue, channel, subject, topic).
    public var destination: String
    /// The messages; one, or several for a batch publish.
    public var messages: [OutgoingMessage]
    /// The transport-defined kind of ``destination`` (a Redis list or stream, say); nil for the
    /// transport's default kind.
    public var destinationKind: DestinationKind?
    /// Whether this is a batch publish (even of one message).
    public var isBatch: Bool
    /// Whether the destination is temporary, as a reply inbox is.
    public var destinationIsTemporary: Bool
    /// The context the publish happens in: the caller's, or the process span's for a handler's
    /// return value. Telemetry parents its spans here.
    public var serviceContext: ServiceContext
    /// For a handler's return value or reply: the trace context the consumed message was created
    /// under. FastStream-style telemetry re-sends it; OpenTelemetry-style telemetry ignores it.
    public var originContext: ServiceContext?
    /// The broker's telemetry identity.
    public var broker: BrokerDescription
    /// The logger of the publishing code.
    public var logger: Logger

    public init(
        destination: String,
        destinationKind: DestinationKind? = nil,
        messages: [OutgoingMessage],
        isBatch: Bool = false,
        destinationIsTemporary: Bool = false,
        serviceContext: ServiceContext,
        originContext: ServiceContext? = nil,
        broker: BrokerDescription,
        logger: Logger
    ) {
        self.destination = destination
        self.destinationKind = destinationKind
        self.messages = messages
        self.isBatch = isBatch
        self.destinationIsTemporary = destinationIsTemporary
        self.serviceContext = serviceContext
        self.originContext = originContext
        self.broker = broker
        self.logger = logger
    }
}

/// A kind of destination, for brokers that have several (Redis: channel, list, stream).
///
/// The core carries it from the publishing call to the transport without reading it; each broker
/// module defines its kinds and the typed API that produces them.
public struct DestinationKind: Sendable, Hashable {
    /// The kind, as the transport names it.
    public var name: String
    /// Options of the kind (a stream's maximum length, say).
    public var parameters: [String: String]

    public init(_ name: String, parameters: [String: String] = [:]) {
        self.name = name
        self.parameters = parameters
    }
}

/// Where a handler's return value goes: a destination and its kind.
package struct PublishTarget: Sendable, Hashable {
    package var destination: String
    package var kind: DestinationKind?

    package init(destination: String, kind: DestinationKind? = nil) {
        self.destination = destination
        self.kind = kind
    }
}
