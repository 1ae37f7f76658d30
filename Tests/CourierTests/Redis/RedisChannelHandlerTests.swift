@testable import CourierRedis
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// The Redis connection's channel handler on an `EmbeddedChannel`, frame by frame: the bytes it
/// writes, the bytes the "server" answers, what the callers and the push listener get. No server.
@Suite("Redis channel handler")
struct RedisChannelHandlerTests {
    /// An embedded channel with the connection's pipeline (decoder, handler), not yet active.
    final class Connection {
        let channel = EmbeddedChannel()
        let handler: RedisChannelHandler
        /// What the push listener got, as summaries.
        let pushes = Inbox<String>()

        init(
            handshake: RedisConnectionStateMachine<EventLoopPromise<RESPValue>>.Handshake = .init(),
            handshakeTimeout: Duration? = .seconds(5)
        ) throws {
            let pushes = self.pushes
            handler = RedisChannelHandler(
                handshake: handshake,
                handshakeTimeout: handshakeTimeout,
                eventLoop: channel.eventLoop,
                onPush: { value in pushes.put(value.summary) }
            )
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
            try channel.pipeline.syncOperations.addHandler(handler)
        }

        /// Connects the channel, which starts the handshake.
        func activate() throws {
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6379), promise: nil)
        }

        /// The next command the handler wrote, as its words; nil if it wrote nothing.
        func written() throws -> String? {
            try channel.readOutbound(as: ByteBuffer.self).map(commandWords)
        }

        /// Bytes from the server.
        func receive(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Sends a command as ``RedisConnection`` does; returns the reply's future.
        func send(_ name: String, _ arguments: [RedisCommand.Argument] = [], timeout: Duration? = nil) -> EventLoopFuture<RESPValue> {
            RedisConnection.enqueue(RedisCommand(name, arguments), timeout: timeout, on: channel, flush: true)
        }

        /// A connection past a plain RESP3 handshake.
        static func ready() throws -> Connection {
            let connection = try Connection()
            try connection.activate()
            #expect(try connection.written() == "HELLO 3")
            try connection.receive("%1\r\n+proto\r\n:3\r\n")
            #expect(outcome(connection.handler.handshakeCompleted) == "true")
            return connection
        }

        deinit {
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }

    @Test("HELLO 3 with AUTH, then SELECT: the handshake completes in RESP3")
    func helloWithAuthAndSelect() throws {
        let connection = try Connection(handshake: .init(username: "app", password: "pw", database: 3))
        try connection.activate()
        #expect(try connection.written() == "HELLO 3 AUTH app pw")
        #expect(outcome(connection.handler.handshakeCompleted) == nil)
        try connection.receive("%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n")
        #expect(try connection.written() == "SELECT 3")
        try connection.receive("+OK\r\n")
        #expect(try connection.written() == nil)
        #expect(outcome(connection.handler.handshakeCompleted) == "true")
    }

    @Test("a server that does not know HELLO: AUTH the RESP2 way, then ready in RESP2")
    func resp2Fallback() throws {
        let connection = try Connection(handshake: .init(password: "pw"))
        try connection.activate()
        #expect(try connection.written() == "HELLO 3 AUTH default pw")
        try connection.receive("-ERR unknown command 'HELLO', with args beginning with: '3'\r\n")
        #expect(try connection.written() == "AUTH pw")
        try connection.receive("+OK\r\n")
        #expect(outcome(connection.handler.handshakeCompleted) == "false")
        #expect(connection.channel.isActive)
    }

    @Test("wrong credentials: the handshake fails with WRONGPASS and the channel closes")
    func wrongPassword() throws {
        let connection = try Connection(handshake: .init(password: "nope"))
        try connection.activate()
        _ = try connection.written()
        try connection.receive("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        #expect(outcome(connection.handler.handshakeCompleted) == "server/WRONGPASS")
        #expect(!connection.channel.isActive)
    }

    @Test("no reply to the handshake in time: it fails with a timeout and the channel closes")
    func handshakeTimeout() throws {
        let connection = try Connection(handshakeTimeout: .seconds(2))
        try connection.activate()
        _ = try connection.written()
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(outcome(connection.handler.handshakeCompleted) == "timeout")
        #expect(!connection.channel.isActive)
    }

    @Test("pipelined commands go out in order and their replies complete them in order, a push in between")
    func pipelinedWithPush() throws {
        let connection = try Connection.ready()
        let set = connection.send("SET", ["k", "v"])
        let incr = connection.send("INCR", ["k"])
        let get = connection.send("GET", ["k"])
        #expect(try connection.written() == "SET k v")
        #expect(try connection.written() == "INCR k")
        #expect(try connection.written() == "GET k")
        // Two replies and a push in one read, then the last reply split across two.
        try connection.receive("+OK\r\n>3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n-ERR value is not an integer or out of range\r\n$1")
        #expect(outcome(set) == "OK")
        #expect(outcome(incr) == "server/ERR")
        #expect(outcome(get) == nil)
        #expect(connection.pushes.values == [">[message, news, hi]"])
        try connection.receive("\r\nv\r\n")
        #expect(outcome(get) == "v")
    }

    @Test("a command that times out fails once; its late reply is discarded, the next command gets its own")
    func timeoutThenLateReply() throws {
        let connection = try Connection.ready()
        let slow = connection.send("GET", ["slow"], timeout: .seconds(1))
        let fast = connection.send("GET", ["fast"], timeout: .seconds(5))
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(outcome(slow) == "timeout")
        #expect(outcome(fast) == nil)
        try connection.receive("$4\r\nlate\r\n$4\r\nfast\r\n")
        #expect(outcome(slow) == "timeout")
        #expect(outcome(fast) == "fast")
        // The answered command's timer was cancelled: nothing happens when it would have fired.
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(connection.channel.isActive)
    }

    @Test("an error reply fails its command with the server's code and leaves the connection open")
    func errorReplyWithCode() throws {
        let connection = try Connection.ready()
        let read = connection.send("XREADGROUP", ["GROUP", "g", "c", "STREAMS", "s", ">"])
        _ = try connection.written()
        try connection.receive("-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n")
        #expect(outcome(read) == "server/NOGROUP")
        #expect(connection.channel.isActive)
    }

    @Test("malformed bytes close the connection with a protocol error, failing what waits")
    func malformedBytes() throws {
        let connection = try Connection.ready()
        let first = connection.send("GET", ["a"])
        let second = connection.send("GET", ["b"])
        try connection.receive("?this is not RESP\r\n")
        #expect(outcome(first) == "protocolViolation")
        #expect(outcome(second) == "protocolViolation")
        #expect(!connection.channel.isActive)
    }

    @Test("malformed bytes during the handshake fail it with a protocol error")
    func malformedHandshakeReply() throws {
        let connection = try Connection()
        try connection.activate()
        try connection.receive("?garbage\r\n")
        #expect(outcome(connection.handler.handshakeCompleted) == "protocolViolation")
        #expect(!connection.channel.isActive)
    }

    @Test("the channel going inactive fails what is pending")
    func channelInactive() throws {
        let connection = try Connection.ready()
        let pending = connection.send("BLPOP", ["q", "0"])
        connection.channel.pipeline.fireChannelInactive()
        #expect(outcome(pending) == "connectionClosed")
    }

    @Test("closing the channel fails what is pending; a command after it never reaches the handler and fails")
    func closeFailsPending() throws {
        let connection = try Connection.ready()
        let pending = connection.send("BLPOP", ["q", "0"])
        connection.channel.close(promise: nil)
        #expect(outcome(pending) == "connectionClosed")
        #expect(!connection.channel.isActive)
        #expect(outcome(connection.send("GET", ["k"])) == "connectionClosed")
    }

    @Test("RESP2: a subscribed connection's messages, plain arrays nobody waits for, reach the push listener")
    func resp2Pushes() throws {
        let connection = try Connection(handshake: .init(prefersRESP3: false))
        try connection.activate()
        #expect(outcome(connection.handler.handshakeCompleted) == "false")
        var subscribe = ByteBuffer()
        RedisCommand("SUBSCRIBE", ["news"]).encode(into: &subscribe)
        connection.channel.writeAndFlush(RedisChannelHandler.Command(bytes: subscribe, name: "SUBSCRIBE", reply: nil, timeout: nil), promise: nil)
        #expect(try connection.written() == "SUBSCRIBE news")
        try connection.receive("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n")
        #expect(connection.pushes.values == ["[subscribe, news, :1]", "[message, news, hi]"])
    }
}

/// How a future ended, if it has: the value's summary, `true`/`false` for the handshake, or the
/// error's code; nil while it waits. On an embedded event loop, callbacks on a completed future
/// run at once.
func outcome<Value: Sendable>(_ future: EventLoopFuture<Value>) -> String? {
    let result = Mutex<String?>(nil)
    future.whenComplete { completed in
        let text: String
        switch completed {
        case .success(let value as RESPValue): text = value.summary
        case .success(let value): text = "\(value)"
        case .failure(let error as RedisError): text = error.summary
        case .failure(let error): text = "\(error)"
        }
        result.withLock { $0 = text }
    }
    return result.withLock { $0 }
}
