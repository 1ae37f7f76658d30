import Courier

/// What can go wrong talking to Redis.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// The URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// The server answered with an error reply; ``RedisError/serverCode`` says which.
        public static let server = Code("server")
        /// The connection closed (or was never open).
        public static let connectionClosed = Code("connectionClosed")
        /// A reply did not arrive in time.
        public static let timeout = Code("timeout")
        /// A publish found no connection to Redis within its
        /// ``RedisConfiguration/publishTimeout``: the server was unreachable (restarting, down, cut
        /// off) all that time. The message says since when and the last connect error, which is
        /// ``RedisError/underlying``. The message was not sent.
        public static let connectionUnavailable = Code("connectionUnavailable")
        /// ``RedisConfiguration/tls`` cannot be used (an unreadable certificate or key file, a key
        /// that does not match): ``RedisError/underlying`` is NIOSSL's error. Nothing was sent.
        public static let invalidTLSConfiguration = Code("invalidTLSConfiguration")
        /// The server's reply broke the protocol or a limit.
        public static let protocolViolation = Code("protocolViolation")
        /// The server's reply did not have the shape the command promises.
        public static let unexpectedReply = Code("unexpectedReply")

        public var description: String { name }
    }

    /// The kind of an error reply: its first word, by Redis's convention (`-WRONGPASS invalid
    /// username-password pair`). A struct, so codes this module does not name still compare.
    public struct ServerCode: Sendable, Hashable, CustomStringConvertible {
        /// The word as the server sent it.
        public let rawValue: String

        /// A code by its word, for codes this module does not name (a module's own errors).
        public init(_ rawValue: String) { self.rawValue = rawValue }

        /// A generic error; also what servers before 6.0 answer to `HELLO` (an unknown command).
        public static let err = ServerCode("ERR")
        /// Wrong user name or password.
        public static let wrongPass = ServerCode("WRONGPASS")
        /// The connection has not authenticated and the server requires it.
        public static let noAuth = ServerCode("NOAUTH")
        /// The server knows `HELLO` but not the protocol version asked for.
        public static let noProto = ServerCode("NOPROTO")
        /// The consumer group (or its stream) does not exist.
        public static let noGroup = ServerCode("NOGROUP")
        /// `XGROUP CREATE` of a group that exists.
        public static let busyGroup = ServerCode("BUSYGROUP")
        /// A blocking read ended by `CLIENT UNBLOCK … ERROR`.
        public static let unblocked = ServerCode("UNBLOCKED")
        /// The server is loading its data set into memory.
        public static let loading = ServerCode("LOADING")
        /// A write sent to a replica: behind Sentinel, a master that was demoted while the
        /// connection stayed open. The command did not run.
        public static let readOnly = ServerCode("READONLY")
        /// Redis Cluster: the key's slot is served by another node, named in the message.
        public static let moved = ServerCode("MOVED")
        /// Redis Cluster: the key's slot is being migrated; ask the node named, once, after `ASKING`.
        public static let ask = ServerCode("ASK")
        /// Redis Cluster: the cluster cannot serve the key's slot now (its master is down).
        public static let clusterDown = ServerCode("CLUSTERDOWN")
        /// A key holds a value of another type than the command works on.
        public static let wrongType = ServerCode("WRONGTYPE")

        public var description: String { rawValue }

        /// The code of an error reply's text: its first word when that is upper-case letters,
        /// digits and underscores (the convention every Redis error follows); nil otherwise.
        init?(errorReply text: String) {
            let word = text.prefix { $0 != " " && $0 != "\r" && $0 != "\n" }
            guard !word.isEmpty,
                word.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            else { return nil }
            self.init(String(word))
        }
    }

    public var code: Code
    public var message: String
    /// For ``Code/server``: the kind of error reply, parsed once from its first word; nil for
    /// every other code, and for a reply that does not follow the convention.
    public var serverCode: ServerCode?
    /// The error that caused this one (a NIO channel error, a TLS failure), when there was one.
    public var underlying: (any Error)?
    public var description: String { "Redis: \(message)" }
    /// Whether the command certainly never reached Redis (the connection was closed, or not set
    /// up yet, before it was written): sending it again cannot make it happen twice.
    var commandNotSent = false

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// The error of an error reply: code ``Code/server``, its ``serverCode`` parsed from the text,
    /// the text as the message.
    init(serverReply text: String) {
        self.init(.server, text)
        self.serverCode = ServerCode(errorReply: text)
    }

    static func invalidURL(_ url: String, _ reason: String) -> Self {
        Self(.invalidURL, "invalid URL '\(Redaction.url(url))': \(reason)")
    }
}
