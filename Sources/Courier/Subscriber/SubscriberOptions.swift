/// How a subscriber consumes.
public struct SubscriberOptions: Sendable {
    /// The ack policy; nil takes the broker's default.
    public var ackPolicy: AckPolicy?
    /// How many deliveries this subscriber processes at once. With 1 (the default), messages are
    /// processed one after another, in order.
    public var maxConcurrency: Int

    public init(ackPolicy: AckPolicy? = nil, maxConcurrency: Int = 1) {
        precondition(maxConcurrency > 0, "maxConcurrency must be at least 1")
        self.ackPolicy = ackPolicy
        self.maxConcurrency = maxConcurrency
    }
}
