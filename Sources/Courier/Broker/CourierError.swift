/// Errors Courier itself raises.
///
/// A struct with a ``Code``, not an enum: a later release can add codes without breaking a
/// `switch` in an application (match with `error.code == .requestTimedOut`).
public struct CourierError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// No reply arrived before the request's timeout.
        public static let requestTimedOut = Code("requestTimedOut")
        /// The reply inbox closed before a reply arrived (the broker stopped).
        public static let replyInboxClosed = Code("replyInboxClosed")
        /// A publish named a destination of another broker's type.
        public static let unsupportedDestination = Code("unsupportedDestination")
        /// Every handler of a subscriber has a filter, and none took the message.
        public static let noMatchingHandler = Code("noMatchingHandler")
        /// A message was asked for what another broker adds (`message.nats` on a Redis message).
        public static let wrongBroker = Code("wrongBroker")
        /// A subscription was read after it stopped, or waited longer than its timeout.
        public static let subscriptionEnded = Code("subscriptionEnded")
        /// The server did not answer a ``Broker/ping(timeout:)`` in time, or answered with an error.
        public static let pingFailed = Code("pingFailed")
        /// The broker is not running with every subscriber subscribed (not started, starting,
        /// stopping or stopped).
        public static let notRunning = Code("notRunning")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The error that caused this one, when there was one.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        "\(code): \(message)" + (underlying.map { " (\($0))" } ?? "")
    }
}
