public import Logging

/// Settings of a broker that every subscriber and publish shares unless it says otherwise.
///
/// ```swift
/// let broker = try RedisBroker(
///     url: "redis://127.0.0.1:6379",
///     options: BrokerOptions(json: .python, defaultAckPolicy: .nackOnError, messageLogLevel: .info)
/// )
/// ```
public struct BrokerOptions: Sendable {
    /// How JSON bodies are written and read (keys, dates, coders of your own); a subscriber can
    /// choose its own (``SubscriberOptions/json``).
    public var json: JSONCoding
    /// The ack policy of subscribers that choose none; nil keeps the transport's default.
    public var defaultAckPolicy: AckPolicy?
    /// Logs a "received" line when a handler starts and a "processed" line when it ends, with the
    /// destination, message and correlation ids, the trace id and the duration, like FastStream's
    /// access log; nil (the default) logs neither, which costs nothing per message.
    public var messageLogLevel: Logger.Level?

    public init(json: JSONCoding = .default, defaultAckPolicy: AckPolicy? = nil, messageLogLevel: Logger.Level? = nil) {
        self.json = json
        self.defaultAckPolicy = defaultAckPolicy
        self.messageLogLevel = messageLogLevel
    }
}
