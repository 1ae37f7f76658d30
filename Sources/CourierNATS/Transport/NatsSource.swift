@_spi(BrokerModule) public import Courier

/// What a NATS subscriber consumes: a core subject, a JetStream consumer, or a key-value bucket.
public struct NatsSource: SubscriptionSource, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Core NATS: at most once; subscribers in the same `queue` group share the messages.
        case subject(queue: String?)
        /// A JetStream consumer of `stream`: at least once, with ack, nak (with delay), term and
        /// in-progress. When `declare` is set the stream is created (or updated) before consuming.
        case jetStream(stream: String, declare: NatsStream?, consumer: NatsConsumer)
        /// Changes to the keys of a key-value bucket (the latest value of each key first).
        case keyValue(bucket: String)
    }

    /// The subject: `*` matches one token, `>` the rest, and a `{name}` token matches like `*`
    /// and reaches the handler in ``NatsMessageInfo/path``. For key-value watches, the keys.
    public var subject: String
    public var kind: Kind

    public init(subject: String, kind: Kind) {
        self.subject = subject
        self.kind = kind
    }

    /// A plain destination is a core NATS subject, as in FastStream.
    public init(destination: String) {
        self.init(subject: destination, kind: .subject(queue: nil))
    }

    /// A core NATS subject, optionally in a queue group.
    public static func subject(_ subject: String, queue: String? = nil) -> Self {
        Self(subject: subject, kind: .subject(queue: queue))
    }

    /// A JetStream consumer of an existing stream.
    public static func jetStream(_ subject: String, stream: String, consumer: NatsConsumer = NatsConsumer()) -> Self {
        Self(subject: subject, kind: .jetStream(stream: stream, declare: nil, consumer: consumer))
    }

    /// A JetStream consumer of `stream`, which is created or updated first.
    public static func jetStream(_ subject: String, stream: NatsStream, consumer: NatsConsumer = NatsConsumer()) -> Self {
        Self(subject: subject, kind: .jetStream(stream: stream.name, declare: stream, consumer: consumer))
    }

    /// Watches the keys matching `keys` (default: all) in a key-value bucket, created if missing.
    /// Key-value entries carry no trace context: each is processed in a trace of its own.
    public static func keyValue(bucket: String, keys: String = ">") -> Self {
        Self(subject: keys, kind: .keyValue(bucket: bucket))
    }

    public var subscribedDestination: SubscribedDestination {
        switch kind {
        case .subject(let queue):
            SubscribedDestination(name: subject, template: isPattern ? subject : nil, consumerGroup: queue)
        case .jetStream(let stream, _, let consumer):
            SubscribedDestination(
                name: subject,
                template: isPattern ? subject : nil,
                consumerGroup: consumer.durableName,
                subscriptionName: stream
            )
        case .keyValue(let bucket):
            SubscribedDestination(name: bucket)
        }
    }

    /// Whether the subject has wildcards or captures (then span names use it as a template).
    var isPattern: Bool {
        TokenPattern(subject).hasCaptures || subject.split(separator: ".").contains { $0 == "*" || $0 == ">" }
    }

    /// The subject as the server takes it: every `{name}` token becomes `*`.
    var natsSubject: String {
        TokenPattern(subject).replacingCaptures(with: "*")
    }

    /// The `{name}` captures of a delivered subject.
    func captures(in delivered: String) -> [String: String] {
        TokenPattern(subject).captures(in: delivered)
    }
}

/// Where a NATS publish goes: a core subject (the default) or a JetStream subject, whose
/// publish waits for the stream's PubAck.
public struct NatsDestination: BrokerDestination, Hashable {
    /// How the message is published.
    public enum Kind: Sendable, Hashable {
        /// Core NATS: fire and forget.
        case core
        /// JetStream: waits for the PubAck; with `expectedStream`, the server checks the subject
        /// belongs to that stream (`Nats-Expected-Stream`).
        case jetStream(expectedStream: String?)
    }

    public var subject: String
    public var kind: Kind
    public var name: String { subject }

    /// A core subject: what a plain name means.
    public init(name: String) {
        self.init(subject: name, kind: .core)
    }

    public init(subject: String, kind: Kind) {
        self.subject = subject
        self.kind = kind
    }

    /// A core NATS publish.
    public static func subject(_ subject: String) -> Self { Self(subject: subject, kind: .core) }

    /// A JetStream publish: waits for the PubAck and fails when no stream stored the message.
    /// `stream` makes the server check the subject belongs to that stream.
    public static func jetStream(_ subject: String, stream: String? = nil) -> Self {
        Self(subject: subject, kind: .jetStream(expectedStream: stream))
    }
}

/// Per-message options of a NATS publish.
public struct NatsPublishOptions: Sendable, Hashable {
    /// JetStream de-duplication: a repeat of the same id within the stream's duplicate window
    /// is stored once (`Nats-Msg-Id`; the receipt's PubAck then says `duplicate`). Without one,
    /// a JetStream publish sends the message's id, so that a publish sent again while a
    /// clustered stream elects its leader is stored once.
    public var deduplicationID: String?

    public init(deduplicationID: String? = nil) {
        self.deduplicationID = deduplicationID
    }
}

extension PublishReceipt {
    /// The JetStream PubAck (stream, sequence, duplicate), for JetStream publishes.
    public var nats: NatsPubAck? { details as? NatsPubAck }
}

/// The JetStream facts of a delivered message, from its ack subject.
public struct NatsJetStreamMetadata: Sendable, Hashable {
    public var stream: String
    public var consumer: String
    /// How many times this message has been delivered (1 the first time).
    public var deliveryCount: Int
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// Messages still pending for the consumer after this one.
    public var pending: UInt64

    /// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the
    /// longer form with a domain and account hash in front.
    init?(ackSubject: String) {
        let tokens = ackSubject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count >= 9, tokens[0] == "$JS", tokens[1] == "ACK" else { return nil }
        let offset = tokens.count == 9 ? 2 : 4
        guard tokens.count >= offset + 7,
            let delivered = Int(tokens[offset + 2]),
            let streamSequence = UInt64(tokens[offset + 3]),
            let consumerSequence = UInt64(tokens[offset + 4]),
            let pending = UInt64(tokens[offset + 6])
        else { return nil }
        stream = String(tokens[offset])
        consumer = String(tokens[offset + 1])
        deliveryCount = delivered
        self.streamSequence = streamSequence
        self.consumerSequence = consumerSequence
        self.pending = pending
    }
}

/// A key-value change, for key-value watches.
public struct NatsKeyValueEntry: Sendable, Hashable {
    /// What the change did, as its `KV-Operation` header says.
    public enum Operation: String, Sendable, Hashable {
        /// A value was stored (the message body).
        case put = "PUT"
        /// The key was deleted; its earlier revisions stay in the history.
        case delete = "DEL"
        /// The key was purged with all its revisions.
        case purge = "PURGE"
    }

    /// The bucket the key is in.
    public var bucket: String
    /// The key that changed.
    public var key: String
    /// The bucket's sequence number for this change.
    public var revision: UInt64
    /// What the change did.
    public var operation: Operation
}

/// What NATS adds to a delivered message, in `IncomingMessage.raw`.
public struct NatsMessageInfo: Sendable {
    /// The subject the message was published to.
    public var subject: String
    /// The values of the subscription subject's `{name}` captures.
    public var path: [String: String]
    /// JetStream facts (stream, consumer, sequences, delivery count), for JetStream messages.
    public var jetStream: NatsJetStreamMetadata?
    /// The change, for key-value watches.
    public var keyValue: NatsKeyValueEntry?
    let acknowledger: NatsAcknowledger?

    /// Tells the server the handler is still working, so the ack wait starts over.
    public func inProgress() async throws {
        guard let acknowledger else { throw NatsError(.jetStream, "only JetStream messages can be marked in progress") }
        try acknowledger.inProgress()
    }
}

extension IncomingMessage {
    /// What NATS adds to the message (captures, JetStream metadata, key-value entry).
    ///
    /// - Throws: `CourierError` `.wrongBroker` for another broker's message.
    public var nats: NatsMessageInfo {
        get throws(CourierError) { try brokerInfo(NatsMessageInfo.self, broker: "NATS") }
    }
}
