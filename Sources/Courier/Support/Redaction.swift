/// Secret-free renderings of connection URLs and configuration, for everything a service shows:
/// log metadata, error descriptions, span attributes, metric dimensions and `description`s.
///
/// Logs go to aggregators that far more people can read than a broker's credentials were meant
/// for, so every broker module passes what it shows through here. Usernames stay (they help when
/// an authentication fails); passwords, tokens and secret-bearing properties become ``mask``.
public enum Redaction {
    /// What a secret is replaced with.
    public static let mask = "***"

    /// How a URL's user info without a colon (`scheme://info@host`) is read.
    public enum LoneUserInfo: Sendable {
        /// A secret: NATS and Redis read `nats://t0ken@host` and `redis://password@host` so.
        case secret
        /// A user name: AMQP reads `amqp://guest@host` so.
        case username
    }

    /// `nats://alice:s3cret@host:4222` → `nats://alice:***@host:4222`; a lone user info
    /// (`nats://t0ken@host`) is masked whole unless `loneUserInfo` says it is a user name; query
    /// parameters whose names ``isSecret(key:)`` are masked too. A comma-separated list of URLs
    /// is redacted URL by URL; text that is not a URL but holds an `@` keeps only what follows it.
    public static func url(_ text: String, loneUserInfo: LoneUserInfo = .secret) -> String {
        guard text.contains("@") || text.contains("?") || text.contains(",") else { return text }
        return text.split(separator: ",", omittingEmptySubsequences: false)
            .map { redactOne($0, loneUserInfo: loneUserInfo) }
            .joined(separator: ",")
    }

    /// Whether a configuration property or query parameter named `key` holds a secret:
    /// `password`, `sasl.password`, `ssl.key.password`, `ssl.key.pem`, `token`, `client_secret`,
    /// `sasl.jaas.config`, `sasl.oauthbearer.config`, `api_key`, `nkey`, `seed`…
    public static func isSecret(key: String) -> Bool {
        let lowered = key.lowercased()
        let words = lowered.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let alwaysSecret: Set<String> = [
            "password", "passwd", "pwd", "pass", "secret", "token", "credential", "credentials", "jaas",
            "authorization", "apikey", "nkey", "seed", "privatekey", "passphrase", "keystore",
        ]
        if words.contains(where: alwaysSecret.contains) { return true }
        if ["password", "secret", "token", "credential"].contains(where: lowered.contains) { return true }
        if lowered.hasPrefix("sasl.oauthbearer.config") { return true }
        // A key (`ssl.key.pem`, `api_key`, `private.key`) is secret; a message key setting is not.
        if words.contains("key") {
            return words.contains { ["ssl", "tls", "pem", "private", "api", "signing", "client"].contains($0) }
        }
        return false
    }

    /// A property dictionary (librdkafka's, say) with the values of secret keys masked.
    public static func properties(_ properties: [String: String]) -> [String: String] {
        var redacted = properties
        for key in properties.keys where isSecret(key: key) { redacted[key] = mask }
        return redacted
    }

    /// The secrets in a URL's user info, as written and percent-decoded: the password of
    /// `user:password@`, or the whole of a lone `info@`. Several comma-separated URLs are read in turn.
    static func secrets(inURL text: String) -> [String?] {
        text.split(separator: ",").flatMap { url -> [String?] in
            let authorityStart = url.firstRange(of: "://")?.upperBound ?? url.startIndex
            let rest = url[authorityStart...]
            let authority = rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex)]
            guard let at = authority.lastIndex(of: "@") else { return [] }
            let userInfo = authority[..<at]
            let secret = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] } ?? userInfo
            return [String(secret), String(secret).removingPercentEncodingIfValid]
        }
    }

    private static func redactOne(_ url: Substring, loneUserInfo: LoneUserInfo) -> String {
        let authorityStart: Substring.Index
        if let scheme = url.firstRange(of: "://") {
            authorityStart = scheme.upperBound
        } else {
            authorityStart = url.startIndex
        }
        let rest = url[authorityStart...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var result = String(url[..<authorityStart])
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            let hasScheme = authorityStart != url.startIndex
            if let colon = userInfo.firstIndex(of: ":"), hasScheme {
                result += userInfo[..<colon] + ":" + mask
            } else if loneUserInfo == .username && hasScheme {
                result += userInfo
            } else {
                result += mask
            }
            result += authority[at...]
        } else {
            result += authority
        }
        result += redactQuery(rest[authorityEnd...])
        return result
    }

    /// `/path?user=a&password=b#x` → `/path?user=a&password=***#x`.
    private static func redactQuery(_ tail: Substring) -> String {
        guard let question = tail.firstIndex(of: "?") else { return String(tail) }
        let fragmentStart = tail[question...].firstIndex(of: "#") ?? tail.endIndex
        let query = tail[tail.index(after: question)..<fragmentStart]
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
            guard let equals = parameter.firstIndex(of: "="), isSecret(key: String(parameter[..<equals])) else {
                return String(parameter)
            }
            return String(parameter[..<equals]) + "=" + mask
        }
        return String(tail[..<question]) + "?" + parameters.joined(separator: "&") + String(tail[fragmentStart...])
    }
}

/// The secrets a connection was configured with, to scrub from text Courier did not write itself:
/// a C library's error messages, a peer process's output.
///
/// ``Redaction`` handles what has a shape (a URL, a property dictionary); this catches a secret
/// wherever it appears, in clear or percent-encoded.
public struct SecretScrubber: Sendable, Hashable {
    private var secrets: [String]

    /// The secrets to scrub; nils and empty strings are ignored.
    public init(_ secrets: [String?]) {
        var unique: [String] = []
        for secret in secrets.compactMap({ $0 }) where !secret.isEmpty {
            for form in [secret, Self.percentEncoded(secret)] where !unique.contains(form) { unique.append(form) }
        }
        // Longest first, so a secret that contains another is masked whole.
        self.secrets = unique.sorted { $0.count > $1.count }
    }

    /// The secrets in the user info of `urls` (a password, or a lone token), and `secrets`.
    public init(urls: [String], _ secrets: [String?] = []) {
        self.init(urls.flatMap(Redaction.secrets(inURL:)) + secrets)
    }

    /// Adds the secrets of `other`.
    public func merging(_ other: SecretScrubber) -> SecretScrubber {
        SecretScrubber(secrets + other.secrets)
    }

    /// Whether there is nothing to scrub.
    public var isEmpty: Bool { secrets.isEmpty }

    /// `text` with every secret replaced by ``Redaction/mask``.
    public func scrub(_ text: String) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacing(secret, with: Redaction.mask)
        }
        return text
    }

    private static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                encoded.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return encoded
    }
}

extension String {
    /// The text with `%XX` escapes decoded, or nil when it has none or they do not make UTF-8.
    fileprivate var removingPercentEncodingIfValid: String? {
        guard contains("%") else { return nil }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
