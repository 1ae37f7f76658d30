import Logging
import Synchronization

/// A message's logger, made on first use.
///
/// Attaching metadata can cost more than handling a message (swift-log's `StreamLogHandler`
/// re-renders all of its metadata on every change), and most messages never log: the metadata is
/// attached once, when a handler or middleware first asks for the logger. Copies of a context
/// share the box, so the logger is made at most once per delivery.
final class MessageLogger: Sendable {
    private let base: Logger
    private let messageID: String?
    private let correlationID: String?
    private let made: Mutex<Logger?>

    /// A logger that adds `courier.message_id` and `courier.correlation_id` to `base`.
    init(_ base: Logger, messageID: String? = nil, correlationID: String? = nil) {
        self.base = base
        self.messageID = messageID
        self.correlationID = correlationID
        self.made = Mutex(messageID == nil && correlationID == nil ? base : nil)
    }

    var logger: Logger {
        made.withLock { made in
            if let made { return made }
            var logger = base
            // One assignment of the whole metadata: one re-render instead of one per key.
            var metadata = logger.handler.metadata
            if let messageID { metadata["courier.message_id"] = .string(messageID) }
            if let correlationID { metadata["courier.correlation_id"] = .string(correlationID) }
            logger.handler.metadata = metadata
            made = logger
            return logger
        }
    }
}
