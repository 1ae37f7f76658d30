/// How a broker module gets its connection back after losing it (a server restart, a failover, a
/// network cut): attempts with a growing, jittered delay between them, for ever or up to a count.
///
/// One value, configured the same way on every broker module (`RedisConfiguration.reconnect`,
/// `RabbitConfiguration.reconnect`, `NatsConfiguration.reconnect`, `KafkaConfiguration.reconnect`):
///
/// ```swift
/// configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(10))
/// ```
///
/// The delay before attempt *n* (0 based) is `initialDelay × 2ⁿ`, at most `maximumDelay`, then
/// scaled by a random factor within ±`jitter`, so that many services do not come back at the same
/// instant. What a publish does meanwhile is the broker's publish timeout's business, not this
/// policy's: see the README's "Reconnects and outages".
public struct ReconnectPolicy: Sendable, Hashable, CustomStringConvertible {
    /// The wait before the first attempt; each failed attempt doubles it.
    public var initialDelay: Duration
    /// The longest wait between two attempts.
    public var maximumDelay: Duration
    /// How far each delay may be from its nominal value, as a fraction (0.2: 80 % to 120 %);
    /// 0 for none. Clamped to 0...1.
    public var jitter: Double
    /// Attempts before giving up (the module then reports the last error, see its
    /// documentation); nil never gives up.
    public var maximumAttempts: Int?

    public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5), jitter: Double = 0.2, maximumAttempts: Int? = nil) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = jitter
        self.maximumAttempts = maximumAttempts
    }

    /// 100 ms doubling to 5 s, ±20 %, for ever.
    public static let `default` = ReconnectPolicy()

    /// The delay before attempt `attempt` (0 based), jittered.
    public func delay(beforeAttempt attempt: Int) -> Duration {
        let nominal = nominalDelay(beforeAttempt: attempt)
        let spread = min(max(jitter, 0), 1)
        guard spread > 0 else { return nominal }
        return nominal * Double.random(in: (1 - spread)...(1 + spread))
    }

    /// The delay before attempt `attempt` (0 based) without jitter: `initialDelay × 2ⁿ`, capped.
    public func nominalDelay(beforeAttempt attempt: Int) -> Duration {
        let initial = max(initialDelay, .zero)
        let maximum = max(maximumDelay, initial)
        // 2^20 × any sane initial delay is past any sane maximum: no overflow, same result.
        return min(initial * (1 << min(max(attempt, 0), 20)), maximum)
    }

    /// Whether another attempt may follow `failedAttempts` failed ones.
    public func allowsAttempt(after failedAttempts: Int) -> Bool {
        guard let maximumAttempts else { return true }
        return failedAttempts < maximumAttempts
    }

    /// The attempts of one outage: the delay before each, until the policy gives up.
    public func attempts() -> Attempts { Attempts(policy: self) }

    /// The attempts of one outage, in order: `nextDelay()` is the wait before the next attempt,
    /// or nil once the policy gives up. A new outage starts a new value.
    public struct Attempts: Sendable {
        public let policy: ReconnectPolicy
        /// Attempts handed out so far.
        public private(set) var count = 0

        init(policy: ReconnectPolicy) { self.policy = policy }

        /// The wait before the next attempt; nil when `maximumAttempts` were made.
        public mutating func nextDelay() -> Duration? {
            guard policy.allowsAttempt(after: count) else { return nil }
            defer { count += 1 }
            return policy.delay(beforeAttempt: count)
        }
    }

    public var description: String {
        "\(initialDelay) doubling to \(maximumDelay), ±\(Int((jitter * 100).rounded())) %, " + (maximumAttempts.map { "at most \($0) attempts" } ?? "for ever")
    }
}
