import NIOCore

/// Turns every flush that reaches it within one event-loop tick into one flush at the end of
/// that tick.
///
/// Many tasks publishing at once each write and flush their own command: without this, each flush
/// is a `write(2)` of its own. Writes that arrive together (a tick runs every task queued on the
/// event loop) now leave together, in one syscall, in the order they were written; a lone write
/// still leaves in the tick it was made. Placed right after the codec's encoder, nearest the
/// socket.
package final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    package typealias OutboundIn = NIOAny
    package typealias OutboundOut = NIOAny

    private var flushScheduled = false

    package init() {}

    package func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        // Runs after the tasks already queued on the loop: the writes of this tick.
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            context.flush()
        }
    }
}
