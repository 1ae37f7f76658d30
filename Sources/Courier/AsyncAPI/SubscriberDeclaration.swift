/// What a subscriber declared, for documents that describe the service (AsyncAPI): where it
/// listens, the types its handlers take and return, and where their results are published.
public struct SubscriberDeclaration: Sendable {
    /// Where it listens: the broker's own source type.
    public let source: any SubscriptionSource
    /// Its options, with its ``SubscriberOptions/asyncAPI`` description.
    public let options: SubscriberOptions
    /// Whether its handler takes batches.
    public let isBatch: Bool
    /// Its handlers, in the order they were declared (several when filters share the subscription).
    public internal(set) var handlers: [HandlerDeclaration]
    /// How its source appears in an AsyncAPI document of each version, as its broker describes it.
    public internal(set) var channels: [AsyncAPIVersion: AsyncAPIChannel] = [:]
}

/// One handler of a subscriber: its message type, its result type, and its publishers.
public struct HandlerDeclaration: Sendable {
    /// The type each message is decoded as (for a batch handler, each element's).
    public let input: any Any.Type
    /// The type the handler returns; nil for none (`Void`).
    public let output: (any Any.Type)?
    /// Where the result is published.
    public internal(set) var publishers: [PublisherDeclaration]
}

/// A destination a handler's result is published to.
public struct PublisherDeclaration: Sendable {
    /// The broker's own destination type.
    public let destination: any BrokerDestination
    /// How it appears in an AsyncAPI document.
    public let asyncAPI: AsyncAPIOptions
    /// How the destination appears in an AsyncAPI document of each version, as its broker
    /// describes it; filled by ``Broker/declaredSubscribers``.
    public internal(set) var channels: [AsyncAPIVersion: AsyncAPIChannel] = [:]
}

/// A broker an AsyncAPI document can describe: what it declared, its server, its JSON coding.
/// ``Broker`` is one.
public protocol AsyncAPIDescribable: Sendable {
    /// Every subscriber declared so far, in order.
    var declaredSubscribers: [SubscriberDeclaration] { get }
    /// The server the document names (no credentials).
    func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer
    /// How bodies are written as JSON unless a subscriber says otherwise: the schemas follow it.
    var asyncAPIJSON: JSONCoding { get }
}

extension Broker: AsyncAPIDescribable {
    public var declaredSubscribers: [SubscriberDeclaration] {
        state.withLock { $0.declarations }.map { definition in
            var declaration = SubscriberDeclaration(
                source: definition.source,
                options: definition.options,
                isBatch: definition.batch != nil,
                handlers: definition.declaredHandlers()
            )
            for version in AsyncAPIVersion.allCases {
                declaration.channels[version] = transport.asyncAPIChannel(for: definition.source, version: version)
            }
            for handler in declaration.handlers.indices {
                for publisher in declaration.handlers[handler].publishers.indices {
                    let destination = declaration.handlers[handler].publishers[publisher].destination
                    for version in AsyncAPIVersion.allCases {
                        // A publisher's destination is the transport's own kind, or a name.
                        let channel = (destination as? Transport.Destination).map { transport.asyncAPIChannel(for: $0, version: version) }
                            ?? AsyncAPIChannel(address: destination.name)
                        declaration.handlers[handler].publishers[publisher].channels[version] = channel
                    }
                }
            }
            return declaration
        }
    }

    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        transport.asyncAPIServer(version)
    }

    public var asyncAPIJSON: JSONCoding { options.json }
}
