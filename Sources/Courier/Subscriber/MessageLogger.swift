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
    private let metadata: Logger.Metadata
    private let made: Mutex<Logger?>

    init(_ base: Logger, metadata: Logger.Metadata = [:]) {
        self.base = base
        self.metadata = metadata
        self.made = Mutex(metadata.isEmpty ? base : nil)
    }

    var logger: Logger {
        made.withLock { made in
            if let made { return made }
            var logger = base
            // One assignment of the whole metadata: one re-render instead of one per key.
            logger.handler.metadata.merge(metadata) { _, new in new }
            made = logger
            return logger
        }
    }
}
