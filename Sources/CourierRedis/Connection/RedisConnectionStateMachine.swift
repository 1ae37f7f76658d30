import Courier
import NIOCore

/// The life of one connection to Redis as a value: events go in, and each returns the one action
/// the channel handler carries out.
///
/// Events: the channel became active, a reply or a push arrived, a command was enqueued, a
/// command or the handshake timed out, an error was caught, a close was asked for, the channel
/// went inactive. Actions: write these bytes, succeed or fail this request, forward this push,
/// close the channel and fail everything pending, or fail everything pending because the channel
/// is gone. It does no I/O and knows no event loop, so tests drive it event by event;
/// ``RedisChannelHandler`` is what feeds it in production.
///
/// The handshake happens here, before any command: `HELLO 3` (with `AUTH` when there are
/// credentials); a server that answers it with `ERR` (before 6.0 Redis does not know `HELLO`) or
/// `NOPROTO` (no RESP3) gets the RESP2 way instead, `AUTH`, as does a configuration that does not
/// prefer RESP3; then `SELECT` when the database is not 0.
///
/// Replies come back in the order the commands went out, so each command that waits for a reply
/// holds a slot in a queue, and a reply completes the oldest slot. A command that times out is
/// failed at once, but its slot stays, emptied: its reply may still come and must be discarded,
/// not handed to the command after it. A request is completed exactly once, by its reply, its
/// timeout or the end of the connection, because completing one takes it out of its slot.
///
/// `Request` is whatever the caller waits on: the handler's promise; a number in tests.
struct RedisConnectionStateMachine<Request> {
    /// Identifies a command that waits for a reply, for its timer.
    typealias RequestID = Int

    /// What the handshake sends, from ``RedisConfiguration``.
    struct Handshake: Sendable {
        var prefersRESP3: Bool
        var username: String?
        var password: String?
        var database: Int

        init(prefersRESP3: Bool = true, username: String? = nil, password: String? = nil, database: Int = 0) {
            self.prefersRESP3 = prefersRESP3
            self.username = username
            self.password = password
            self.database = database
        }

        init(configuration: RedisConfiguration) {
            self.init(
                prefersRESP3: configuration.prefersRESP3,
                username: configuration.username,
                password: configuration.password,
                database: configuration.database
            )
        }
    }

    /// The handshake command whose reply is awaited.
    enum HandshakeStep: Equatable {
        /// `HELLO 3 [AUTH user password]`.
        case hello
        /// `AUTH [user] password`: RESP2.
        case auth
        /// `SELECT database`, the protocol settled.
        case select(isRESP3: Bool)

        var commandName: String {
            switch self {
            case .hello: "HELLO"
            case .auth: "AUTH"
            case .select: "SELECT"
            }
        }
    }

    enum State {
        /// The channel is not active yet.
        case initialized
        /// A handshake command is out; commands are refused until the connection is ready.
        case handshaking(HandshakeStep)
        /// Commands flow, in RESP3 or RESP2.
        case ready(isRESP3: Bool)
        /// The channel is closing because of `error`; everything pending has been failed.
        case closing(RedisError)
        /// The channel is inactive.
        case closed(RedisError)
    }

    /// What fails when the connection ends.
    struct Cleanup {
        /// The requests still waiting for a reply, oldest first.
        var requests: [(id: RequestID, request: Request)]
        var error: RedisError
        /// Whether the handshake had not finished: whoever waits for the connection fails too.
        var failsHandshake: Bool
    }

    enum Action {
        /// Nothing to do.
        case none
        /// Write `bytes`: a handshake command, or a command whose answers arrive as pushes.
        case write(ByteBuffer)
        /// Write a command that waits for a reply; with a timeout, start a timer that reports
        /// back through ``RedisConnectionStateMachine/commandTimedOut(_:)``.
        case writeCommand(ByteBuffer, id: RequestID, timeout: Duration?)
        /// The handshake finished: the connection is ready.
        case completeHandshake(isRESP3: Bool)
        case succeedRequest(id: RequestID, Request, RESPValue)
        case failRequest(id: RequestID, Request, RedisError)
        /// Refuse a command without reply (the connection is not ready, or is gone).
        case rejectWrite(RedisError)
        /// Hand an out-of-band value (pub/sub) to whoever listens.
        case forwardPush(RESPValue)
        /// Close the channel and fail what `cleanup` lists.
        case closeConnection(Cleanup)
        /// Fail what `cleanup` lists: the channel is closed or closing already.
        case failPending(Cleanup)
    }

    /// A command sent and waiting for its reply.
    private struct Slot {
        let id: RequestID
        let commandName: String
        let timeout: Duration?
        /// Who waits; nil once the command timed out, so that its reply is discarded.
        var request: Request?
    }

    private(set) var state: State = .initialized
    private let handshake: Handshake
    private var slots = CircularBuffer<Slot>()
    private var nextID: RequestID = 0
    private let allocator = ByteBufferAllocator()

    init(handshake: Handshake) {
        self.handshake = handshake
    }

    // MARK: - Events

    /// The channel is connected: the handshake starts.
    mutating func channelActive() -> Action {
        guard case .initialized = state else { return .none }
        guard handshake.prefersRESP3 else { return authenticateRESP2() }
        state = .handshaking(.hello)
        var arguments: [RedisCommand.Argument] = ["3"]
        if let password = handshake.password {
            arguments += ["AUTH", .string(handshake.username ?? "default"), .string(password)]
        }
        return .write(encode(RedisCommand("HELLO", arguments)))
    }

    /// A value that is not a push arrived: the reply to the oldest command waiting, or, with none
    /// waiting, a RESP2 subscribed connection's message (RESP2 has no pushes).
    mutating func replyReceived(_ value: RESPValue) -> Action {
        switch state {
        case .initialized:
            return closeConnection(RedisError(.protocolViolation, "the server sent a reply before the connection was set up"))
        case .handshaking(let step):
            return handshakeReplyReceived(value, step: step)
        case .ready:
            guard let slot = slots.popFirst() else { return .forwardPush(value) }
            // Timed out already: the reply is late and nobody waits for it.
            guard let request = slot.request else { return .none }
            if case .error(let text) = value {
                return .failRequest(id: slot.id, request, RedisError(serverReply: text))
            }
            return .succeedRequest(id: slot.id, request, value)
        case .closing, .closed:
            // Everything pending was failed when the connection ended.
            return .none
        }
    }

    /// A RESP3 push arrived. Pushes before the connection is ready go nowhere: nothing can have
    /// subscribed yet.
    mutating func pushReceived(_ value: RESPValue) -> Action {
        guard case .ready = state else { return .none }
        return .forwardPush(value)
    }

    /// A command that waits for a reply: written when the connection is ready, refused otherwise.
    mutating func commandEnqueued(_ bytes: ByteBuffer, name: String, request: Request, timeout: Duration?) -> Action {
        let id = nextID
        nextID += 1
        switch state {
        case .ready:
            slots.append(Slot(id: id, commandName: name, timeout: timeout, request: request))
            return .writeCommand(bytes, id: id, timeout: timeout)
        case .initialized, .handshaking:
            return .failRequest(id: id, request, Self.notSetUpError(sending: name))
        case .closing(let error), .closed(let error):
            return .failRequest(id: id, request, Self.closedError(sending: name, after: error))
        }
    }

    /// A command whose answers arrive as pushes (SUBSCRIBE and friends): no slot.
    mutating func commandWithoutReplyEnqueued(_ bytes: ByteBuffer, name: String) -> Action {
        switch state {
        case .ready:
            return .write(bytes)
        case .initialized, .handshaking:
            return .rejectWrite(Self.notSetUpError(sending: name))
        case .closing(let error), .closed(let error):
            return .rejectWrite(Self.closedError(sending: name, after: error))
        }
    }

    /// The timer of command `id` fired. If the command still waits it fails now; its slot stays
    /// so that its reply, should it come, is discarded in its turn.
    mutating func commandTimedOut(_ id: RequestID) -> Action {
        guard let index = slots.firstIndex(where: { $0.id == id }), let request = slots[index].request else {
            // Answered (or failed) before the timer fired.
            return .none
        }
        slots[index].request = nil
        let slot = slots[index]
        let limit = slot.timeout.map { " within \($0)" } ?? ""
        return .failRequest(id: id, request, RedisError(.timeout, "no reply to \(slot.commandName)\(limit)"))
    }

    /// The handshake took longer than the connect timeout.
    mutating func handshakeTimedOut() -> Action {
        guard case .handshaking(let step) = state else { return .none }
        return closeConnection(RedisError(.timeout, "no reply to \(step.commandName) while setting up the connection"))
    }

    /// The pipeline reported an error: a malformed reply, a TLS or socket failure. The connection
    /// cannot be trusted after it and closes.
    mutating func errorCaught(_ error: any Error) -> Action {
        switch state {
        case .initialized, .handshaking, .ready:
            return closeConnection(Self.connectionError(error))
        case .closing, .closed:
            return .none
        }
    }

    /// The channel is asked to close (``RedisConnection/close()``): what is pending fails; the
    /// close itself goes ahead whatever this returns.
    mutating func closeRequested() -> Action {
        switch state {
        case .initialized, .handshaking, .ready:
            let error = RedisError(.connectionClosed, "the connection to Redis was closed")
            let cleanup = takeCleanup(error)
            state = .closing(error)
            return .failPending(cleanup)
        case .closing, .closed:
            return .none
        }
    }

    /// The channel went inactive (or its handler was removed): what is pending fails.
    mutating func channelInactive() -> Action {
        switch state {
        case .initialized, .handshaking, .ready:
            let during = if case .ready = state { "" } else { " while setting up the connection" }
            let error = RedisError(.connectionClosed, "the connection to Redis closed\(during)")
            let cleanup = takeCleanup(error)
            state = .closed(error)
            return .failPending(cleanup)
        case .closing(let error):
            state = .closed(error)
            return .none
        case .closed:
            return .none
        }
    }

    // MARK: - The handshake

    private mutating func handshakeReplyReceived(_ value: RESPValue, step: HandshakeStep) -> Action {
        if case .error(let text) = value {
            let refusal = RedisError(serverReply: text)
            if step == .hello, refusal.serverCode == .err || refusal.serverCode == .noProto {
                // A server without HELLO (before 6.0) or without RESP3: the RESP2 way.
                return authenticateRESP2()
            }
            var error = refusal
            error.message = "\(step.commandName) refused while setting up the connection: \(text)"
            return closeConnection(error)
        }
        switch step {
        case .hello: return selectDatabase(isRESP3: true)
        case .auth: return selectDatabase(isRESP3: false)
        case .select(let isRESP3): return becomeReady(isRESP3: isRESP3)
        }
    }

    private mutating func authenticateRESP2() -> Action {
        guard let password = handshake.password else { return selectDatabase(isRESP3: false) }
        state = .handshaking(.auth)
        let arguments: [RedisCommand.Argument] = handshake.username.map { [.string($0), .string(password)] } ?? [.string(password)]
        return .write(encode(RedisCommand("AUTH", arguments)))
    }

    private mutating func selectDatabase(isRESP3: Bool) -> Action {
        guard handshake.database != 0 else { return becomeReady(isRESP3: isRESP3) }
        state = .handshaking(.select(isRESP3: isRESP3))
        return .write(encode(RedisCommand("SELECT", [.integer(handshake.database)])))
    }

    private mutating func becomeReady(isRESP3: Bool) -> Action {
        state = .ready(isRESP3: isRESP3)
        return .completeHandshake(isRESP3: isRESP3)
    }

    // MARK: - Ending

    private mutating func closeConnection(_ error: RedisError) -> Action {
        let cleanup = takeCleanup(error)
        state = .closing(error)
        return .closeConnection(cleanup)
    }

    /// Empties the slots into a cleanup; call before leaving the current state, which says
    /// whether the handshake was still under way.
    private mutating func takeCleanup(_ error: RedisError) -> Cleanup {
        let failsHandshake: Bool
        switch state {
        case .initialized, .handshaking: failsHandshake = true
        case .ready, .closing, .closed: failsHandshake = false
        }
        let requests = slots.compactMap { slot in slot.request.map { (id: slot.id, request: $0) } }
        slots.removeAll()
        return Cleanup(requests: requests, error: error, failsHandshake: failsHandshake)
    }

    /// A command refused before it was written: it never reached the server.
    private static func closedError(sending name: String, after error: RedisError) -> RedisError {
        var refusal = RedisError(.connectionClosed, "cannot send \(name): \(error.message)", underlying: error)
        refusal.commandNotSent = true
        return refusal
    }

    private static func notSetUpError(sending name: String) -> RedisError {
        var refusal = RedisError(.connectionClosed, "cannot send \(name): the connection is not set up yet")
        refusal.commandNotSent = true
        return refusal
    }

    /// What an error from the pipeline means for the connection's users.
    private static func connectionError(_ error: any Error) -> RedisError {
        switch error {
        case let error as RedisError:
            error
        case let error as RESPProtocolError:
            RedisError(.protocolViolation, "closing the connection: \(error.description)", underlying: error)
        case let error as ByteToMessageDecoderError:
            RedisError(.protocolViolation, "closing the connection after a malformed reply", underlying: error)
        default:
            RedisError(.connectionClosed, "connection error: \(error)", underlying: error)
        }
    }

    private func encode(_ command: RedisCommand) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: command.estimatedSize)
        command.encode(into: &buffer)
        return buffer
    }
}

// The handshake holds the password: whatever shows a state machine shows it masked.
extension RedisConnectionStateMachine.Handshake: CustomStringConvertible, CustomReflectable {
    var description: String {
        "Handshake(prefersRESP3: \(prefersRESP3), username: \(username ?? "nil"), password: \(password == nil ? "nil" : Redaction.mask), database: \(database))"
    }

    var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "prefersRESP3": prefersRESP3,
                "username": username as Any,
                "password": password.map { _ in Redaction.mask } as Any,
                "database": database,
            ],
            displayStyle: .struct
        )
    }
}
