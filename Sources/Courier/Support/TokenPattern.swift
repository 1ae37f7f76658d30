/// A dot-separated pattern with `{name}` capture tokens, like FastStream's path parameters:
/// `orders.{region}.created`. NATS subjects and RabbitMQ topic routing keys share the shape: the
/// broker gets each capture as its single-token wildcard (`*`), and a delivered name gives the
/// captured tokens back by name.
@_spi(BrokerModule) public struct TokenPattern: Sendable, Hashable {
    public let pattern: String

    public init(_ pattern: String) {
        self.pattern = pattern
    }

    /// Whether any token is a `{name}` capture.
    public var hasCaptures: Bool {
        pattern.split(separator: ".").contains(where: Self.isCapture)
    }

    /// The pattern as the broker takes it: each `{name}` token replaced by `wildcard`.
    public func replacingCaptures(with wildcard: String) -> String {
        guard pattern.contains("{") else { return pattern }
        return pattern.split(separator: ".", omittingEmptySubsequences: false)
            .map { Self.isCapture($0) ? Substring(wildcard) : $0 }
            .joined(separator: ".")
    }

    /// The captured tokens of `delivered`, by name; empty without captures.
    public func captures(in delivered: String) -> [String: String] {
        guard pattern.contains("{") else { return [:] }
        let tokens = delivered.split(separator: ".", omittingEmptySubsequences: false)
        var captures: [String: String] = [:]
        for (index, token) in pattern.split(separator: ".", omittingEmptySubsequences: false).enumerated() where index < tokens.count && Self.isCapture(token) {
            captures[String(token.dropFirst().dropLast())] = String(tokens[index])
        }
        return captures
    }

    private static func isCapture(_ token: Substring) -> Bool {
        token.count >= 2 && token.first == "{" && token.last == "}"
    }
}
