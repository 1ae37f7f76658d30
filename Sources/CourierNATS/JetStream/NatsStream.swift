/// A JetStream stream, as a subscriber or `declareStream` creates it (or updates it to).
public struct NatsStream: Sendable, Hashable {
    /// How long messages are kept.
    public enum Retention: String, Sendable, Hashable {
        /// Until a limit (age, count, size) removes them.
        case limits
        /// While some consumer has not acked them.
        case interest
        /// Until one consumer acks them: a work queue.
        case workQueue = "workqueue"
    }

    /// Where messages are kept.
    public enum Storage: String, Sendable, Hashable {
        case file
        case memory
    }

    public var name: String
    /// The subjects the stream captures (wildcards allowed); defaults to the stream's name.
    public var subjects: [String]
    public var retention: Retention
    public var storage: Storage
    /// Messages older than this are removed; nil keeps them by age forever.
    public var maxAge: Duration?
    /// The window in which a repeated `Nats-Msg-Id` is dropped as a duplicate (server default 2 min).
    public var duplicateWindow: Duration?
    /// How many servers of a cluster keep the stream (1, 3 or 5; 3 survives the loss of one).
    /// An acknowledged publish is on a majority of them.
    public var replicas: Int

    public init(
        _ name: String,
        subjects: [String]? = nil,
        retention: Retention = .limits,
        storage: Storage = .file,
        maxAge: Duration? = nil,
        duplicateWindow: Duration? = nil,
        replicas: Int = 1
    ) {
        self.name = name
        self.subjects = subjects ?? [name]
        self.retention = retention
        self.storage = storage
        self.maxAge = maxAge
        self.duplicateWindow = duplicateWindow
        self.replicas = replicas
    }
}

/// How a JetStream subscriber consumes its stream.
public struct NatsConsumer: Sendable, Hashable {
    /// How messages reach the consumer.
    public enum Delivery: Sendable, Hashable {
        /// The server pushes messages to a subject; subscribers with the same `queue` share them.
        case push(queue: String? = nil)
        /// The subscriber fetches up to `batchSize` messages at a time, each fetch waiting at
        /// most `expires` for them: backpressure by construction. A batch subscriber gets one
        /// fetch's messages together: `batchSize` of them, or fewer once `expires` has passed.
        case pull(batchSize: Int = 16, expires: Duration = .seconds(5))
    }

    /// Where a new consumer starts.
    public enum DeliverPolicy: String, Sendable, Hashable {
        case all
        case last
        case new
    }

    /// The durable name: the consumer, its position and its pending acks survive restarts of
    /// subscriber and server. Nil creates an ephemeral consumer that goes with the subscription.
    public var durableName: String?
    public var delivery: Delivery
    public var deliverPolicy: DeliverPolicy
    /// How long the server waits for an ack before delivering again (server default 30 s).
    public var ackWait: Duration?
    /// How often a message is delivered at most; nil for no limit.
    public var maxDeliver: Int?
    /// How many unacked messages the consumer may have out at once (kept within the pending limits).
    public var maxAckPending: Int?
    /// The delay the server waits before redelivering a message the ack policy nacks; nil redelivers at once.
    public var nackDelay: Duration?

    public init(
        durableName: String? = nil,
        delivery: Delivery = .push(),
        deliverPolicy: DeliverPolicy = .all,
        ackWait: Duration? = nil,
        maxDeliver: Int? = nil,
        maxAckPending: Int? = nil,
        nackDelay: Duration? = nil
    ) {
        self.durableName = durableName
        self.delivery = delivery
        self.deliverPolicy = deliverPolicy
        self.ackWait = ackWait
        self.maxDeliver = maxDeliver
        self.maxAckPending = maxAckPending
        self.nackDelay = nackDelay
    }

    /// A durable pull consumer.
    public static func pull(_ durableName: String, batchSize: Int = 16, expires: Duration = .seconds(5)) -> Self {
        Self(durableName: durableName, delivery: .pull(batchSize: batchSize, expires: expires))
    }

    /// A durable push consumer, shared by the subscribers of `queue` when given.
    public static func push(_ durableName: String, queue: String? = nil) -> Self {
        Self(durableName: durableName, delivery: .push(queue: queue))
    }
}

/// A JetStream acknowledgement of a publish.
public struct NatsPubAck: Sendable, Hashable, Decodable {
    /// The stream that stored the message.
    public var stream: String
    /// The message's sequence number in the stream.
    public var sequence: UInt64
    /// Whether the server dropped the message as a duplicate of the same `Nats-Msg-Id`.
    public var duplicate: Bool

    enum CodingKeys: String, CodingKey {
        case stream, sequence = "seq", duplicate
    }

    package init(stream: String, sequence: UInt64, duplicate: Bool) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stream = try container.decode(String.self, forKey: .stream)
        sequence = try container.decode(UInt64.self, forKey: .sequence)
        duplicate = try container.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
    }
}

/// What a stream holds, from the JetStream API.
public struct NatsStreamState: Sendable, Hashable, Decodable {
    public var messages: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64

    enum CodingKeys: String, CodingKey {
        case messages, firstSequence = "first_seq", lastSequence = "last_seq"
    }
}

/// A consumer's progress, from the JetStream API.
public struct NatsConsumerState: Sendable, Hashable, Decodable {
    /// Messages delivered and not acked yet.
    public var ackPending: Int
    /// Messages delivered more than once.
    public var redelivered: Int
    /// Messages in the stream the consumer has not been delivered yet.
    public var pending: Int

    enum CodingKeys: String, CodingKey {
        case ackPending = "num_ack_pending", redelivered = "num_redelivered", pending = "num_pending"
    }
}
