@testable import CourierRedis
import NIOCore
import Testing

/// The Redis connection's state machine alone: events in, actions out, no channel. Requests are
/// numbers; actions are compared through ``RedisConnectionStateMachine/Action/summary``.
@Suite("Redis connection state machine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<Int>

    /// A machine past its handshake, ready in RESP3 (no credentials, database 0).
    static func ready() -> Machine {
        var machine = Machine(handshake: .init())
        _ = machine.channelActive()
        #expect(machine.replyReceived(helloReply).summary == "ready RESP3")
        return machine
    }

    static let helloReply = RESPValue.map([.bulkString(ByteBuffer(string: "proto")), .integer(3)])
    static let ok = RESPValue.simpleString(ByteBuffer(string: "OK"))

    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    static func bytes(_ name: String, _ arguments: [RedisCommand.Argument] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        RedisCommand(name, arguments).encode(into: &buffer)
        return buffer
    }

    // MARK: - Handshake

    @Test("HELLO 3 with AUTH as the default user, then ready in RESP3")
    func helloWithPassword() {
        var machine = Machine(handshake: .init(password: "pw"))
        #expect(machine.channelActive().summary == "write HELLO 3 AUTH default pw")
        #expect(machine.replyReceived(Self.helloReply).summary == "ready RESP3")
        guard case .ready(isRESP3: true) = machine.state else {
            Issue.record("not ready: \(machine.state)")
            return
        }
    }

    @Test("HELLO 3 with an ACL user, then SELECT, then ready")
    func helloThenSelect() {
        var machine = Machine(handshake: .init(username: "app", password: "pw", database: 3))
        #expect(machine.channelActive().summary == "write HELLO 3 AUTH app pw")
        #expect(machine.replyReceived(Self.helloReply).summary == "write SELECT 3")
        #expect(machine.replyReceived(Self.ok).summary == "ready RESP3")
    }

    @Test("a server that does not know HELLO (ERR) gets AUTH and SELECT the RESP2 way")
    func fallbackOnUnknownCommand() {
        var machine = Machine(handshake: .init(password: "pw", database: 2))
        #expect(machine.channelActive().summary == "write HELLO 3 AUTH default pw")
        #expect(machine.replyReceived(.error("ERR unknown command 'HELLO', with args beginning with: '3'")).summary == "write AUTH pw")
        #expect(machine.replyReceived(Self.ok).summary == "write SELECT 2")
        #expect(machine.replyReceived(Self.ok).summary == "ready RESP2")
    }

    @Test("a server without RESP3 (NOPROTO) and no credentials is ready in RESP2 at once")
    func fallbackOnNoProto() {
        var machine = Machine(handshake: .init())
        #expect(machine.channelActive().summary == "write HELLO 3")
        #expect(machine.replyReceived(.error("NOPROTO unsupported protocol version")).summary == "ready RESP2")
    }

    @Test("RESP2 asked for: AUTH with the user first, no HELLO")
    func resp2Preferred() {
        var machine = Machine(handshake: .init(prefersRESP3: false, username: "app", password: "pw"))
        #expect(machine.channelActive().summary == "write AUTH app pw")
        #expect(machine.replyReceived(Self.ok).summary == "ready RESP2")
        var plain = Machine(handshake: .init(prefersRESP3: false))
        #expect(plain.channelActive().summary == "ready RESP2")
    }

    @Test("wrong credentials end the handshake with the server's code; no RESP2 retry", arguments: [
        ("WRONGPASS invalid username-password pair or user is disabled.", "WRONGPASS"),
        ("NOAUTH HELLO must be called with the client already authenticated", "NOAUTH"),
    ])
    func refusedCredentials(_ reply: String, _ code: String) {
        var machine = Machine(handshake: .init(password: "pw"))
        _ = machine.channelActive()
        let action = machine.replyReceived(.error(reply))
        #expect(action.summary == "close server/\(code), failing the handshake and []")
        if case .closeConnection(let cleanup) = action {
            #expect(cleanup.error.serverCode == RedisError.ServerCode(code))
            #expect(cleanup.error.message.contains(reply))
        }
        #expect(machine.channelInactive().summary == "none")
    }

    @Test("a refused SELECT ends the handshake")
    func refusedSelect() {
        var machine = Machine(handshake: .init(database: 99))
        _ = machine.channelActive()
        #expect(machine.replyReceived(Self.helloReply).summary == "write SELECT 99")
        #expect(machine.replyReceived(.error("ERR DB index is out of range")).summary == "close server/ERR, failing the handshake and []")
    }

    @Test("before the connection is ready: commands are refused, pushes dropped")
    func beforeReady() {
        var machine = Machine(handshake: .init(password: "pw"))
        #expect(machine.commandEnqueued(Self.bytes("GET", ["k"]), name: "GET", request: 1, timeout: nil).summary == "fail 1 connectionClosed")
        _ = machine.channelActive()
        #expect(machine.commandEnqueued(Self.bytes("GET", ["k"]), name: "GET", request: 2, timeout: nil).summary == "fail 2 connectionClosed")
        #expect(machine.commandWithoutReplyEnqueued(Self.bytes("SUBSCRIBE", ["c"]), name: "SUBSCRIBE").summary == "reject connectionClosed")
        #expect(machine.pushReceived(.push([Self.bulk("invalidate"), .null])).summary == "none")
        // The handshake goes on.
        #expect(machine.replyReceived(Self.helloReply).summary == "ready RESP3")
    }

    @Test("a handshake that does not finish in time closes the connection with a timeout")
    func handshakeTimeout() {
        var machine = Machine(handshake: .init())
        _ = machine.channelActive()
        #expect(machine.handshakeTimedOut().summary == "close timeout, failing the handshake and []")
        var done = Self.ready()
        #expect(done.handshakeTimedOut().summary == "none")
    }

    @Test("the password never shows in the handshake's description")
    func handshakeRedacted() {
        let handshake = Machine.Handshake(username: "app", password: "s3cret-pass", database: 1)
        #expect(!String(describing: handshake).contains("s3cret-pass"))
        #expect(!String(reflecting: handshake).contains("s3cret-pass"))
        var dumped = ""
        dump(Machine(handshake: handshake), to: &dumped)
        #expect(!dumped.contains("s3cret-pass"))
    }

    // MARK: - Commands

    @Test("pipelined replies complete their commands in order; an error reply fails only its own, with its code")
    func pipelinedReplies() {
        var machine = Self.ready()
        #expect(machine.commandEnqueued(Self.bytes("SET", ["k", "v"]), name: "SET", request: 1, timeout: .seconds(5)).summary == "write #0 SET k v (timeout 5.0 seconds)")
        #expect(machine.commandEnqueued(Self.bytes("INCR", ["k"]), name: "INCR", request: 2, timeout: nil).summary == "write #1 INCR k")
        #expect(machine.commandEnqueued(Self.bytes("GET", ["k"]), name: "GET", request: 3, timeout: nil).summary == "write #2 GET k")
        #expect(machine.replyReceived(Self.ok).summary == "succeed 1 with OK")
        let failure = machine.replyReceived(.error("ERR value is not an integer or out of range"))
        #expect(failure.summary == "fail 2 server/ERR")
        if case .failRequest(_, _, let error) = failure {
            #expect(error.message == "ERR value is not an integer or out of range")
        }
        #expect(machine.replyReceived(Self.bulk("v")).summary == "succeed 3 with v")
    }

    @Test("a push between replies is forwarded and completes nothing")
    func pushBetweenReplies() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("PING"), name: "PING", request: 1, timeout: nil)
        let push = RESPValue.push([Self.bulk("message"), Self.bulk("news"), Self.bulk("hi")])
        #expect(machine.pushReceived(push).summary == "push >[message, news, hi]")
        #expect(machine.replyReceived(.simpleString(ByteBuffer(string: "PONG"))).summary == "succeed 1 with PONG")
    }

    @Test("RESP2: a value nobody waits for is a subscribed connection's message, forwarded")
    func resp2Message() {
        var machine = Machine(handshake: .init(prefersRESP3: false))
        _ = machine.channelActive()
        #expect(machine.commandWithoutReplyEnqueued(Self.bytes("SUBSCRIBE", ["news"]), name: "SUBSCRIBE").summary == "write SUBSCRIBE news")
        let message = RESPValue.array([Self.bulk("message"), Self.bulk("news"), Self.bulk("hi")])
        #expect(machine.replyReceived(message).summary == "push [message, news, hi]")
    }

    @Test("a timed-out command fails once; its late reply is discarded and the next reply goes to the next command")
    func timeoutThenLateReply() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("GET", ["slow"]), name: "GET", request: 1, timeout: .seconds(1))
        _ = machine.commandEnqueued(Self.bytes("GET", ["fast"]), name: "GET", request: 2, timeout: .seconds(1))
        let timeout = machine.commandTimedOut(0)
        #expect(timeout.summary == "fail 1 timeout")
        if case .failRequest(_, _, let error) = timeout {
            #expect(error.message == "no reply to GET within 1.0 seconds")
        }
        // A second firing (or a stale timer) changes nothing.
        #expect(machine.commandTimedOut(0).summary == "none")
        #expect(machine.replyReceived(Self.bulk("late")).summary == "none")
        #expect(machine.replyReceived(Self.bulk("fast")).summary == "succeed 2 with fast")
        // Request 2's timer fires after its reply: nothing to do.
        #expect(machine.commandTimedOut(1).summary == "none")
    }

    @Test("a timed-out command is not failed again when the connection ends")
    func timeoutThenClose() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("GET", ["a"]), name: "GET", request: 1, timeout: .seconds(1))
        _ = machine.commandEnqueued(Self.bytes("GET", ["b"]), name: "GET", request: 2, timeout: nil)
        #expect(machine.commandTimedOut(0).summary == "fail 1 timeout")
        #expect(machine.channelInactive().summary == "fail pending connectionClosed: [2]")
    }

    // MARK: - The end of a connection

    @Test("an error caught closes the connection and fails everything waiting, once")
    func errorCaught() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("GET", ["a"]), name: "GET", request: 1, timeout: nil)
        _ = machine.commandEnqueued(Self.bytes("GET", ["b"]), name: "GET", request: 2, timeout: nil)
        #expect(machine.errorCaught(RESPProtocolError("unknown reply type byte 0x3f")).summary == "close protocolViolation, failing [1, 2]")
        #expect(machine.errorCaught(RESPProtocolError("again")).summary == "none")
        #expect(machine.replyReceived(Self.ok).summary == "none")
        #expect(machine.channelInactive().summary == "none")
        #expect(machine.commandEnqueued(Self.bytes("GET", ["c"]), name: "GET", request: 3, timeout: nil).summary == "fail 3 connectionClosed")
    }

    @Test("the channel going inactive fails what waits; during the handshake, the handshake too")
    func channelInactive() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("GET", ["a"]), name: "GET", request: 1, timeout: nil)
        #expect(machine.channelInactive().summary == "fail pending connectionClosed: [1]")
        #expect(machine.channelInactive().summary == "none")
        #expect(machine.commandWithoutReplyEnqueued(Self.bytes("SUBSCRIBE", ["c"]), name: "SUBSCRIBE").summary == "reject connectionClosed")

        var handshaking = Machine(handshake: .init())
        _ = handshaking.channelActive()
        #expect(handshaking.channelInactive().summary == "fail pending connectionClosed, failing the handshake: []")
        var neverActive = Machine(handshake: .init())
        #expect(neverActive.channelInactive().summary == "fail pending connectionClosed, failing the handshake: []")
    }

    @Test("a close asked for fails what waits; the channel then closes without more to fail")
    func closeRequested() {
        var machine = Self.ready()
        _ = machine.commandEnqueued(Self.bytes("BLPOP", ["q", "0"]), name: "BLPOP", request: 1, timeout: nil)
        #expect(machine.closeRequested().summary == "fail pending connectionClosed: [1]")
        #expect(machine.closeRequested().summary == "none")
        #expect(machine.channelInactive().summary == "none")
    }

    // MARK: - Server codes

    @Test("error replies are parsed into codes once", arguments: [
        ("WRONGPASS invalid username-password pair", "WRONGPASS"),
        ("NOGROUP No such key 's' or consumer group 'g'", "NOGROUP"),
        ("BUSYGROUP Consumer Group name already exists", "BUSYGROUP"),
        ("UNBLOCKED client unblocked via CLIENT UNBLOCK", "UNBLOCKED"),
        ("LOADING Redis is loading the dataset in memory", "LOADING"),
        ("ERR unknown command 'HELLO'", "ERR"),
        ("MOVED_ELSEWHERE", "MOVED_ELSEWHERE"),
    ])
    func serverCodes(_ text: String, _ code: String) {
        let error = RedisError(serverReply: text)
        #expect(error.code == .server)
        #expect(error.serverCode == RedisError.ServerCode(code))
        #expect(error.message == text)
    }

    @Test("an error reply without a code by convention has none", arguments: ["", "lowercase words", " leading space", "Mixed case"])
    func noServerCode(_ text: String) {
        #expect(RedisError(serverReply: text).serverCode == nil)
    }
}

// MARK: - Rendering actions

extension RESPValue {
    /// A compact rendering for assertions: strings as text, `:n`, `-error`, `[a, b]`, `>[push]`.
    var summary: String {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer): String(buffer: buffer)
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .null: "null"
        case .array(let values), .set(let values): "[\(values.map(\.summary).joined(separator: ", "))]"
        case .map(let values): "%[\(values.map(\.summary).joined(separator: ", "))]"
        case .push(let values): ">[\(values.map(\.summary).joined(separator: ", "))]"
        case .double(let value): ",\(value)"
        case .boolean(let value): "#\(value)"
        case .bigNumber(let value): "(\(value)"
        }
    }
}

/// An encoded command as its words: `HELLO 3 AUTH default pw`.
func commandWords(_ bytes: ByteBuffer) -> String {
    var buffer = bytes
    guard let value = try? RESPDecoder.parse(&buffer), let words = value.elements?.compactMap(\.string), buffer.readableBytes == 0 else {
        return "<not a command: \(String(buffer: bytes))>"
    }
    return words.joined(separator: " ")
}

extension RedisError {
    /// `code`, or `server/CODE` for an error reply.
    var summary: String {
        serverCode.map { "\(code)/\($0)" } ?? "\(code)"
    }
}

extension RedisConnectionStateMachine.Action {
    var summary: String {
        switch self {
        case .none:
            return "none"
        case .write(let bytes):
            return "write \(commandWords(bytes))"
        case .writeCommand(let bytes, let id, let timeout):
            return "write #\(id) \(commandWords(bytes))" + (timeout.map { " (timeout \($0))" } ?? "")
        case .completeHandshake(let isRESP3):
            return isRESP3 ? "ready RESP3" : "ready RESP2"
        case .succeedRequest(_, let request, let value):
            return "succeed \(request) with \(value.summary)"
        case .failRequest(_, let request, let error):
            return "fail \(request) \(error.summary)"
        case .rejectWrite(let error):
            return "reject \(error.summary)"
        case .forwardPush(let value):
            return "push \(value.summary)"
        case .closeConnection(let cleanup):
            let handshake = cleanup.failsHandshake ? " the handshake and" : ""
            return "close \(cleanup.error.summary), failing\(handshake) [\(cleanup.requests.map { "\($0.request)" }.joined(separator: ", "))]"
        case .failPending(let cleanup):
            let handshake = cleanup.failsHandshake ? ", failing the handshake" : ""
            let requests = cleanup.requests.map { "\($0.request)" }.joined(separator: ", ")
            return "fail pending \(cleanup.error.summary)\(handshake): [\(requests)]"
        }
    }
}
