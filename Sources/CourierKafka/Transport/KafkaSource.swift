public import Courier

/// Where a Kafka subscriber starts reading when it has no committed offset.
public enum KafkaStartPosition: Sendable, Hashable {
    /// The oldest record still kept (`auto.offset.reset=earliest`).
    case beginning
    /// Only records written from now on (`auto.offset.reset=latest`): FastStream's default.
    case end
    /// This offset of every partition (manually assigned partitions); for a group, the first
    /// records of partitions without a committed offset.
    case offset(Int64)
}

/// What a Kafka subscriber consumes: topics or a pattern, in a consumer group or not, or
/// partitions assigned by hand.
public struct KafkaSource: SubscriptionSource {
    public enum Kind: Sendable, Hashable {
        /// These topics. In a group, the group shares their partitions between its members;
        /// without one, this subscriber takes every partition (as `faststream.kafka` does).
        case topics([String])
        /// Every topic whose name matches the regular expression (`^orders\..*`); always in a
        /// group (a private one when none is given).
        case pattern(String)
        /// These partitions, assigned by hand: no rebalancing.
        case partitions([KafkaTopicPartition])
    }

    public var kind: Kind
    /// The consumer group (`group.id`): members share the partitions and the committed offsets.
    public var group: String?
    /// Where reading starts without a committed offset.
    public var start: KafkaStartPosition
    /// librdkafka consumer properties for this subscriber only (`session.timeout.ms`,
    /// `max.poll.interval.ms`, `fetch.min.bytes`…).
    public var properties: [String: String]
    /// Called on the consumer's poll loop after each assignment and before each revocation
    /// (FastStream's rebalance `listener`); it must not block.
    public var onRebalance: (@Sendable (KafkaRebalance) -> Void)?

    public init(
        kind: Kind,
        group: String? = nil,
        start: KafkaStartPosition = .end,
        properties: [String: String] = [:],
        onRebalance: (@Sendable (KafkaRebalance) -> Void)? = nil
    ) {
        self.kind = kind
        self.group = group
        self.start = start
        self.properties = properties
        self.onRebalance = onRebalance
    }

    /// A plain destination is a topic, read without a group from the end, as in FastStream.
    public init(destination: String) {
        self.init(kind: .topics([destination]))
    }

    /// One or several topics, in `group` or (without one) every partition.
    public static func topics(
        _ topics: String...,
        group: String? = nil,
        start: KafkaStartPosition = .end,
        properties: [String: String] = [:],
        onRebalance: (@Sendable (KafkaRebalance) -> Void)? = nil
    ) -> Self {
        Self(kind: .topics(topics), group: group, start: start, properties: properties, onRebalance: onRebalance)
    }

    /// Every topic matching `regex` (librdkafka's syntax; a leading `^` is added if missing).
    public static func pattern(
        _ regex: String,
        group: String? = nil,
        start: KafkaStartPosition = .end,
        properties: [String: String] = [:],
        onRebalance: (@Sendable (KafkaRebalance) -> Void)? = nil
    ) -> Self {
        Self(kind: .pattern(regex.hasPrefix("^") ? regex : "^" + regex), group: group, start: start, properties: properties, onRebalance: onRebalance)
    }

    /// Partitions assigned by hand, read from `start`; with a `group`, processed offsets are
    /// committed to it.
    public static func partitions(
        _ partitions: [KafkaTopicPartition],
        start: KafkaStartPosition = .end,
        group: String? = nil,
        properties: [String: String] = [:]
    ) -> Self {
        Self(kind: .partitions(partitions), group: group, start: start, properties: properties)
    }

    public var subscribedDestination: SubscribedDestination {
        switch kind {
        case .topics(let topics):
            SubscribedDestination(name: topics.joined(separator: ","), consumerGroup: group)
        case .pattern(let regex):
            SubscribedDestination(name: regex, template: regex, consumerGroup: group)
        case .partitions(let partitions):
            SubscribedDestination(name: Array(Set(partitions.map(\.topic))).sorted().joined(separator: ","), consumerGroup: group)
        }
    }

    /// `auto.offset.reset` for this start position.
    var offsetReset: String {
        switch start {
        case .beginning, .offset: "earliest"
        case .end: "latest"
        }
    }
}
