/// What can go wrong talking to RabbitMQ.
public struct RabbitError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// The URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// The server refused the login (wrong user or password: 403 ACCESS_REFUSED at connect).
        public static let authenticationFailed = Code("authenticationFailed")
        /// The server closed the connection or a channel with an error (404 NOT_FOUND, 403
        /// ACCESS_REFUSED, 406 PRECONDITION_FAILED…); ``RabbitError/replyCode`` and the message say which.
        public static let closedByServer = Code("closedByServer")
        /// The bytes on the wire were not AMQP 0-9-1 (a malformed frame, an unexpected method).
        public static let protocolError = Code("protocolError")
        /// No frame came from the server within two heartbeat intervals.
        public static let heartbeatTimeout = Code("heartbeatTimeout")
        /// The connection is closed (or was never opened).
        public static let connectionClosed = Code("connectionClosed")
        /// ``RabbitConfiguration/tls`` cannot be used (an unreadable certificate or key file, a key
        /// that does not match): ``RabbitError/underlying`` is NIOSSL's error. Nothing was sent.
        public static let invalidTLSConfiguration = Code("invalidTLSConfiguration")
        /// A publish was refused: returned as unroutable (`mandatory`; ``RabbitError/replyCode``
        /// is the return's, 312 NO_ROUTE) or nacked by the server (no reply code; a quorum queue
        /// electing its leader nacks, and such a publish is sent again first, as
        /// ``RabbitConfiguration/publishRetries`` allows).
        public static let publishRefused = Code("publishRefused")
        /// A publish found no connection to RabbitMQ within its
        /// ``RabbitConfiguration/publishTimeout``: the server was unreachable (restarting, down,
        /// cut off) all that time. The message says since when and the last connect error, which
        /// is ``RabbitError/underlying``. The message was not sent (or, sent on a connection that
        /// was lost before its confirm, is not sent again).
        public static let connectionUnavailable = Code("connectionUnavailable")
        /// A publish was sent but its confirm did not come within the publish timeout (the server
        /// may still route it: a blocked connection, say).
        public static let timeout = Code("timeout")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The AMQP reply code, for errors the server sent (404, 403, 406, 320…).
    public var replyCode: UInt16?
    /// The error this one wraps, if any.
    public var underlying: (any Error)?

    public var description: String { "RabbitMQ: \(message)" }

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.underlying = underlying
    }
}
