/// How a transport gets its connection back after losing it (a server restart, a network cut, a
/// missed heartbeat): attempts with a growing, jittered delay between them.
///
/// On each new connection the transport declares again every exchange, queue and binding it
/// declared, resumes every subscriber's consumer and the direct reply-to consumer, and sends
/// again the publishes the old connection lost before the server confirmed them.
public struct RabbitReconnect: Sendable, Hashable {
    /// The wait before the first attempt; each failed attempt doubles it.
    public var initialDelay: Duration
    /// The longest wait between two attempts.
    public var maximumDelay: Duration
    /// Attempts before giving up (the broker then stops with the last error); nil never gives up.
    public var maximumAttempts: Int?
    /// How many times a publish the connection lost before its confirm is sent again on the
    /// next connection before it fails. A retried publish may arrive twice, if the server had
    /// taken it before the connection broke; it keeps its message id, for consumers to tell.
    public var publishRetries: Int

    public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5), maximumAttempts: Int? = nil, publishRetries: Int = 3) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
        self.publishRetries = publishRetries
    }

    /// 100 ms doubling to 5 s, forever; a lost publish is sent again up to 3 times.
    public static let `default` = RabbitReconnect()

    /// The wait before attempt `attempt` (0 based), with ±20% jitter so that many services do
    /// not come back at the same instant.
    func delay(beforeAttempt attempt: Int) -> Duration {
        let doubled = initialDelay * (1 << min(attempt, 20))
        let capped = min(doubled, maximumDelay)
        return capped * Double.random(in: 0.8...1.2)
    }
}
