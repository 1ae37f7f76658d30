/// How a subscriber consumes.
public struct SubscriberOptions: Sendable {
    /// The ack policy; nil takes the broker's default (``BrokerOptions/defaultAckPolicy``, else the
    /// transport's).
    public var ackPolicy: AckPolicy?
    /// How many deliveries this subscriber processes at once. With 1 (the default), messages are
    /// processed one after another, in order.
    public var maxConcurrency: Int
    /// How this subscriber's JSON bodies are read and its results written; nil takes the
    /// broker's (``BrokerOptions/json``).
    public var json: JSONCoding?
    /// Never answer a request: a message with `replyTo` gets no reply from this subscriber, as
    /// FastStream's `no_reply=True`. Publishers still get the handler's return value.
    public var noReply: Bool
    /// How the subscriber appears in an AsyncAPI document (its handler's name, a title, a
    /// description, or left out).
    public var asyncAPI: AsyncAPIOptions

    public init(
        ackPolicy: AckPolicy? = nil,
        maxConcurrency: Int = 1,
        json: JSONCoding? = nil,
        noReply: Bool = false,
        asyncAPI: AsyncAPIOptions = AsyncAPIOptions()
    ) {
        precondition(maxConcurrency > 0, "maxConcurrency must be at least 1")
        self.ackPolicy = ackPolicy
        self.maxConcurrency = maxConcurrency
        self.json = json
        self.noReply = noReply
        self.asyncAPI = asyncAPI
    }
}
