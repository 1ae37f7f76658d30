/// Batch consumption: a delivery holds up to `maxMessages` messages that were ready together.
public struct BatchOptions: Sendable, Hashable {
    public var maxMessages: Int
    /// How long a transport that fetches may wait to fill a batch once it has its first message;
    /// nil: take what is ready.
    public var maxWait: Duration?

    public init(maxMessages: Int = 10, maxWait: Duration? = nil) {
        precondition(maxMessages > 0, "a batch holds at least one message")
        self.maxMessages = maxMessages
        self.maxWait = maxWait
    }
}
