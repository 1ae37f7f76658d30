@testable import Courier
import NIOCore
import NIOEmbedded
import Testing

@Suite("FlushCoalescingHandler")
struct FlushCoalescingHandlerTests {
    @Test("flushes made within one event-loop tick leave as one flush at its end, every write in order")
    func coalesces() throws {
        let channel = EmbeddedChannel(handler: FlushCoalescingHandler())
        for text in ["a", "b", "c"] {
            channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
        }
        // Nothing has reached the socket yet: the flush waits for the end of the tick.
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(String(buffer: buffer)) }
        #expect(written == ["a", "b", "c"])
        // The next tick's write is flushed in its own tick.
        channel.writeAndFlush(ByteBuffer(string: "d"), promise: nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "d")
        #expect(try channel.finish().isClean)
    }

    @Test("a write without a flush stays unflushed")
    func writeAlone() throws {
        let channel = EmbeddedChannel(handler: FlushCoalescingHandler())
        channel.write(ByteBuffer(string: "a"), promise: nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "a")
        _ = try channel.finish()
    }
}
