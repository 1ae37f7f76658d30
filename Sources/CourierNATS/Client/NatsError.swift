/// What can go wrong talking to NATS.
public struct NatsError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// A server URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// nats.c reported an error (connecting, publishing, subscribing).
        public static let client = Code("client")
        /// A request reached a subject nobody listens to.
        public static let noResponders = Code("noResponders")
        /// A request or JetStream call got no answer in time.
        public static let timeout = Code("timeout")
        /// The JetStream API answered with an error.
        public static let jetStream = Code("jetStream")
        /// A message's headers could not be read.
        public static let malformedHeaders = Code("malformedHeaders")
        /// The connection is closed.
        public static let connectionClosed = Code("connectionClosed")
        /// The connection was down (nats.c reconnecting) for the whole publish timeout: the
        /// message names the outage (since when, the last error) and was not handed to nats.c,
        /// so it is never sent later.
        public static let connectionUnavailable = Code("connectionUnavailable")
        /// A TLS file (trusted authorities, client certificate or key) could not be read or parsed,
        /// or the TLS settings do not fit the servers.
        public static let tlsConfiguration = Code("tlsConfiguration")
        /// The TLS handshake failed: the server's certificate is not trusted or does not carry the
        /// expected name, or the server refused the client's certificate (or its absence).
        public static let tlsHandshake = Code("tlsHandshake")
        /// A `.creds`, JWT or NKey seed file could not be read or holds no usable credentials.
        public static let credentialsFile = Code("credentialsFile")
        /// The server refused the client's credentials (an authorization violation).
        public static let authentication = Code("authentication")
        /// A key-value write whose condition failed: `createValue` on a key that has a value,
        /// `updateValue` on a key whose latest revision is not the one expected.
        public static let keyValueConflict = Code("keyValueConflict")

        public var description: String { name }
    }

    /// What went wrong, to branch on.
    public var code: Code
    /// What went wrong, for people: the context and nats.c's own text, secrets scrubbed.
    public var message: String
    /// The JetStream API error code (`err_code`), for ``Code/jetStream`` errors.
    public var jetStreamErrorCode: Int?
    /// nats.c's status (its `natsStatus` value, named in ``message``), for errors nats.c reported.
    public var clientStatus: Int?
    /// The error behind this one: for ``Code/connectionUnavailable``, the connection's last error.
    public var underlying: (any Error)?
    public var description: String { "NATS: \(message)" }

    /// A ``NatsError``'s bare message, any other error's description: for an error quoted inside another's message.
    static func text(of error: any Error) -> String {
        (error as? NatsError)?.message ?? "\(error)"
    }

    /// An error with `code`; `clientStatus` is nats.c's status when nats.c reported it.
    public init(_ code: Code, _ message: String, jetStreamErrorCode: Int? = nil, clientStatus: Int? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.jetStreamErrorCode = jetStreamErrorCode
        self.clientStatus = clientStatus
        self.underlying = underlying
    }
}
