public import Courier
import Foundation

/// What a Redis subscriber consumes: a pub/sub channel or pattern, a list, or a stream.
public struct RedisSource: SubscriptionSource, Hashable {
    /// The kinds of source.
    public enum Kind: Sendable, Hashable {
        /// A pub/sub channel (`SUBSCRIBE`): at most once.
        case channel
        /// A pub/sub pattern (`PSUBSCRIBE`): `*`, `?` and `[…]` globs, and `{name}` captures that
        /// match like `*` and reach the handler in ``RedisMessageInfo/path``.
        case pattern
        /// A list (`BLPOP`, or `BLMPOP` for batches): at most once, each message to one consumer.
        case list
        /// A stream (`XREAD`), or a consumer group's share of it (`XREADGROUP`, `XACK`).
        case stream(StreamOptions)
    }

    /// How a stream is consumed.
    public struct StreamOptions: Sendable, Hashable {
        /// The consumer group; nil reads the stream without a group (every subscriber sees every entry).
        public var group: String?
        /// This consumer's name in the group; keep it stable across restarts so that entries it
        /// received but did not ack are delivered to it again. Defaults to the group's name.
        public var consumer: String?
        /// When set, entries pending longer than this with any consumer of the group are claimed
        /// (`XAUTOCLAIM`) and delivered here: how a crashed consumer's entries get processed.
        public var claimIdleAfter: Duration?

        public init(group: String? = nil, consumer: String? = nil, claimIdleAfter: Duration? = nil) {
            self.group = group
            self.consumer = consumer
            self.claimIdleAfter = claimIdleAfter
        }
    }

    /// The channel, pattern, list or stream name.
    public var name: String
    public var kind: Kind
    /// For lists: how many messages one pop may take ahead of the handler (`BLMPOP … COUNT`).
    ///
    /// Fewer round trips per message; on a graceful stop the messages not yet handled are pushed
    /// back to the head of the list in order. Lists are at most once either way: a crash loses
    /// what was popped and not handled, up to this many. 1 pops one message at a time.
    public var prefetch: Int = 16
    /// For channels: a sharded channel (`SSUBSCRIBE`, Redis 7), whose messages stay on the
    /// cluster node that owns the channel's slot instead of going to every node. On one server
    /// it behaves like a plain channel. Publishers use ``RedisDestination/channel(_:sharded:)``
    /// with `sharded: true`: `SSUBSCRIBE` does not see `PUBLISH`, nor `SUBSCRIBE` `SPUBLISH`.
    public var sharded = false

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// A plain destination is a pub/sub channel, as in FastStream.
    public init(destination: String) {
        self.init(name: destination, kind: .channel)
    }

    /// A pub/sub channel; `sharded` subscribes with `SSUBSCRIBE` (see ``sharded``).
    public static func channel(_ name: String, sharded: Bool = false) -> Self {
        var source = Self(name: name, kind: .channel)
        source.sharded = sharded
        return source
    }
    public static func pattern(_ pattern: String) -> Self { Self(name: pattern, kind: .pattern) }
    public static func list(_ name: String, prefetch: Int = 16) -> Self {
        precondition(prefetch > 0, "prefetch is at least 1")
        var source = Self(name: name, kind: .list)
        source.prefetch = prefetch
        return source
    }
    public static func stream(_ name: String, group: String? = nil, consumer: String? = nil, claimIdleAfter: Duration? = nil) -> Self {
        Self(name: name, kind: .stream(StreamOptions(group: group, consumer: consumer, claimIdleAfter: claimIdleAfter)))
    }

    public var subscribedDestination: SubscribedDestination {
        switch kind {
        case .channel, .list:
            SubscribedDestination(name: name)
        case .pattern:
            // Span names use the pattern: one name for every channel it matches.
            SubscribedDestination(name: name, template: name)
        case .stream(let options):
            SubscribedDestination(name: name, consumerGroup: options.group)
        }
    }

    /// How a channel or pattern subscription listens, and the name it gives Redis.
    var pubSub: (mode: PubSubMode, name: String) {
        if kind == .pattern { return (.pattern, glob) }
        return (sharded ? .shardChannel : .channel, name)
    }

    /// The glob PSUBSCRIBE gets: every `{name}` capture becomes `*`.
    var glob: String {
        var result = ""
        var inCapture = false
        for character in name {
            switch (character, inCapture) {
            case ("{", false): inCapture = true
            case ("}", true): inCapture = false; result.append("*")
            case (_, true): continue
            default: result.append(character)
            }
        }
        return result
    }

    /// The `{name}` captures of `channel` against this pattern.
    func captures(in channel: String) -> [String: String] {
        var names: [String] = []
        var literals: [String] = [""]
        var inCapture = false
        for character in name {
            switch (character, inCapture) {
            case ("{", false): inCapture = true; names.append("")
            case ("}", true): inCapture = false; literals.append("")
            case (_, true): names[names.count - 1].append(character)
            default: literals[literals.count - 1].append(character)
            }
        }
        guard !names.isEmpty else { return [:] }
        var rest = Substring(channel)
        guard rest.hasPrefix(literals[0]) else { return [:] }
        rest = rest.dropFirst(literals[0].count)
        var captures: [String: String] = [:]
        for (index, captureName) in names.enumerated() {
            let literal = literals[index + 1]
            if index == names.count - 1 && literal.isEmpty {
                captures[captureName] = String(rest)
                rest = ""
            } else if let range = (index == names.count - 1 ? rest.range(of: literal, options: .backwards) : rest.range(of: literal)) {
                captures[captureName] = String(rest[..<range.lowerBound])
                rest = rest[range.upperBound...]
            } else {
                return [:]
            }
        }
        return captures
    }
}

/// Where a Redis publish goes: a pub/sub channel (the default), a list or a stream.
public struct RedisDestination: BrokerDestination, Hashable {
    /// How the message is stored.
    public enum Kind: Sendable, Hashable {
        /// `PUBLISH` to subscribers of the moment.
        case channel
        /// `RPUSH` onto a list.
        case list
        /// `XADD` to a stream, trimmed to about `maxLength` entries (`MAXLEN ~`) when given.
        case stream(maxLength: Int?)
    }

    public var name: String
    public var kind: Kind
    /// For channels: `SPUBLISH` to a sharded channel (Redis 7), which only the cluster node that
    /// owns the channel's slot (and its replicas) carry; subscribers use
    /// ``RedisSource/channel(_:sharded:)`` with `sharded: true`.
    public var sharded = false

    /// A channel: what a plain name means.
    public init(name: String) {
        self.init(name: name, kind: .channel)
    }

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// `PUBLISH` to a channel, or `SPUBLISH` to a sharded one.
    public static func channel(_ name: String, sharded: Bool = false) -> Self {
        var destination = Self(name: name, kind: .channel)
        destination.sharded = sharded
        return destination
    }
    /// `RPUSH` onto a list.
    public static func list(_ name: String) -> Self { Self(name: name, kind: .list) }
    /// `XADD` to a stream, trimmed to about `maxLength` entries (`MAXLEN ~`) when given.
    public static func stream(_ name: String, maxLength: Int? = nil) -> Self { Self(name: name, kind: .stream(maxLength: maxLength)) }
}

/// What Redis said about a published message, in `PublishReceipt.details`.
public struct RedisPublishInfo: Sendable, Hashable {
    /// The id `XADD` gave the stream entry, for stream publishes.
    public var streamEntryID: String?
    /// How many subscribers received a channel publish (`PUBLISH`'s answer).
    public var receivers: Int?
}

extension PublishReceipt {
    /// What Redis said about the published message (a stream entry id, a channel's receivers).
    public var redis: RedisPublishInfo? { details as? RedisPublishInfo }
}

/// What Redis adds to a delivered message, in `IncomingMessage.raw`.
public struct RedisMessageInfo: Sendable, Hashable {
    /// The stream entry id, for stream messages.
    public var entryID: String?
    /// The pattern a pattern subscription matched.
    public var pattern: String?
    /// The values of the pattern's `{name}` captures.
    public var path: [String: String]
}

extension IncomingMessage {
    /// What Redis adds to the message (stream entry id, pattern captures), for Redis messages.
    ///
    /// - Throws: `CourierError` `.wrongBroker` for another broker's message.
    public var redis: RedisMessageInfo {
        get throws(CourierError) { try brokerInfo(RedisMessageInfo.self, broker: "Redis") }
    }
}
