/// The parts of an `http(s)://host[:port][/path]` endpoint the exporters need, parsed without
/// Foundation.
struct EndpointURL: Sendable, Hashable {
    var isTLS: Bool
    var host: String
    var port: Int?
    var path: String

    init?(_ url: String) {
        let rest: Substring
        if url.hasPrefix("http://") {
            isTLS = false
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            isTLS = true
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        path = String(rest.dropFirst(authority.count))
        if authority.hasPrefix("[") {
            // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = nil
            } else {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
        } else {
            host = String(authority)
            port = nil
        }
        guard !host.isEmpty, !host.contains("@") else { return nil }
    }

    /// The port, or the scheme's default.
    var resolvedPort: Int { port ?? (isTLS ? 443 : 80) }
}
