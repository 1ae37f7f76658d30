/// Errors Courier itself raises.
public struct CourierError: Error, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// No reply arrived before the request's timeout.
        case requestTimedOut
        /// The reply inbox closed before a reply arrived (the broker stopped).
        case replyInboxClosed
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
