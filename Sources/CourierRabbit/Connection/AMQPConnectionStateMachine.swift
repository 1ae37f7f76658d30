import NIOCore

/// The lifecycle of one AMQP connection, as postgres-nio models its own: events in, actions out,
/// no I/O. The channel handler feeds it socket events, frames and timer ticks and carries out
/// what it returns; everything about the connection's state lives here, testable event by event.
///
/// Handshake: protocol header → `connection.start` → `start-ok` (PLAIN) → `tune` → `tune-ok` +
/// `open` → `open-ok`. Then frames of channels other than 0 pass through to the channel layer,
/// heartbeats go both ways, `blocked`/`unblocked` are reported, and a close from either side ends
/// in `close-ok` and the socket closing.
struct AMQPConnectionStateMachine {
    struct Configuration: Sendable, Hashable {
        var username: String
        var password: String
        var virtualHost: String
        /// The heartbeat interval asked for, in seconds; 0 turns heartbeats off. The server's
        /// proposal wins when it is lower (and not 0).
        var heartbeat: UInt16 = 60
        var frameMax: UInt32 = 131_072
        var channelMax: UInt16 = 2047
        var clientProperties: AMQPFieldTable = AMQPConnectionStateMachine.defaultClientProperties
    }

    /// What the two sides agreed on.
    struct Tuning: Sendable, Hashable {
        var channelMax: UInt16
        var frameMax: UInt32
        var heartbeat: UInt16
    }

    enum State: Sendable {
        case initialized
        case awaitingStart
        case awaitingTune
        case awaitingOpenOk(Tuning)
        case open(Tuning, Liveness)
        /// We sent `connection.close` and wait for `close-ok`; `error` is why, if it was a failure.
        case closing(error: RabbitError?)
        case closed
    }

    /// Heartbeat bookkeeping: ticks come every half interval.
    struct Liveness: Sendable, Hashable {
        var ticksWithoutReceiving = 0
        var sentSinceTick = false
    }

    enum Action: Sendable {
        case sendProtocolHeader
        case send([AMQPFrame])
        /// The handshake is done: the frame decoder may take frames up to `frameMax`, heartbeats tick.
        case connected(Tuning)
        /// A frame of a channel other than 0, for the channel layer.
        case forward(AMQPFrame)
        case blocked(reason: String)
        case unblocked
        /// Send `frames` (if any), then close the socket; `error` is why, nil for a clean close.
        case closeSocket(after: [AMQPFrame], error: RabbitError?)
        case none
    }

    private(set) var state: State = .initialized
    let configuration: Configuration

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    static var defaultClientProperties: AMQPFieldTable {
        [
            "product": .string("Courier"),
            "platform": .string("Swift"),
            "capabilities": .table([
                "publisher_confirms": .bool(true),
                "consumer_cancel_notify": .bool(true),
                "connection.blocked": .bool(true),
                "basic.nack": .bool(true),
                "exchange_exchange_bindings": .bool(true),
                "authentication_failure_close": .bool(true),
                "per_consumer_qos": .bool(true),
            ]),
        ]
    }

    // MARK: - Events

    mutating func connected() -> Action {
        guard case .initialized = state else { return .none }
        state = .awaitingStart
        return .sendProtocolHeader
    }

    mutating func frameReceived(_ frame: AMQPFrame) -> Action {
        if case .open(let tuning, var liveness) = state {
            liveness.ticksWithoutReceiving = 0
            state = .open(tuning, liveness)
        }
        guard frame.channel == 0 else {
            switch state {
            case .open: return .forward(frame)
            case .closing: return .none  // the server may still send until it has our close
            default: return protocolViolation("a frame on channel \(frame.channel) before the connection is open")
            }
        }
        switch frame.payload {
        case .heartbeat:
            return .none
        case .method(let method):
            return methodReceived(method)
        case .header, .body:
            return protocolViolation("content on channel 0")
        }
    }

    private mutating func methodReceived(_ method: AMQPMethod) -> Action {
        switch (state, method) {
        case (.awaitingStart, .connectionStart(let major, let minor, _, let mechanisms, _)):
            guard major == 0, minor == 9 else { return protocolViolation("the server speaks AMQP \(major)-\(minor), not 0-9-1") }
            guard mechanisms.split(separator: " ").contains("PLAIN") else {
                return protocolViolation("the server offers no PLAIN login (\(mechanisms))")
            }
            state = .awaitingTune
            let response = [0] + Array(configuration.username.utf8) + [0] + Array(configuration.password.utf8)
            return .send([
                AMQPFrame(
                    channel: 0,
                    payload: .method(.connectionStartOk(clientProperties: configuration.clientProperties, mechanism: "PLAIN", response: response, locale: "en_US"))
                )
            ])
        case (.awaitingTune, .connectionTune(let channelMax, let frameMax, let heartbeat)):
            let tuning = Tuning(
                channelMax: Self.negotiate(configuration.channelMax, channelMax),
                frameMax: Self.negotiate(configuration.frameMax, frameMax),
                heartbeat: Self.negotiate(configuration.heartbeat, heartbeat)
            )
            state = .awaitingOpenOk(tuning)
            return .send([
                AMQPFrame(channel: 0, payload: .method(.connectionTuneOk(channelMax: tuning.channelMax, frameMax: tuning.frameMax, heartbeat: tuning.heartbeat))),
                AMQPFrame(channel: 0, payload: .method(.connectionOpen(virtualHost: configuration.virtualHost))),
            ])
        case (.awaitingOpenOk(let tuning), .connectionOpenOk):
            state = .open(tuning, Liveness())
            return .connected(tuning)
        case (.open, .connectionBlocked(let reason)):
            return .blocked(reason: reason)
        case (.open, .connectionUnblocked):
            return .unblocked
        case (.closing(let error), .connectionCloseOk):
            state = .closed
            return .closeSocket(after: [], error: error)
        case (.closing(let error), .connectionClose):
            // Both sides closed at once: answer and go.
            state = .closed
            return .closeSocket(after: [AMQPFrame(channel: 0, payload: .method(.connectionCloseOk))], error: error)
        case (_, .connectionClose(let code, let text, let classID, let methodID)):
            state = .closed
            let error = Self.serverError(code: code, text: text, classID: classID, methodID: methodID, duringHandshake: !isOpen)
            return .closeSocket(after: [AMQPFrame(channel: 0, payload: .method(.connectionCloseOk))], error: error)
        case (.closing, _):
            return .none
        default:
            return protocolViolation("unexpected \(method.id.classID).\(method.id.methodID) on channel 0")
        }
    }

    /// Every half heartbeat interval: sends a heartbeat if nothing else went out, and gives up on
    /// a server silent for two intervals.
    mutating func heartbeatTick() -> Action {
        guard case .open(let tuning, var liveness) = state, tuning.heartbeat > 0 else { return .none }
        liveness.ticksWithoutReceiving += 1
        if liveness.ticksWithoutReceiving >= 4 {
            state = .closed
            return .closeSocket(
                after: [],
                error: RabbitError(.heartbeatTimeout, "no frame from the server for \(2 * Int(tuning.heartbeat)) seconds (two heartbeat intervals)")
            )
        }
        let send = !liveness.sentSinceTick
        liveness.sentSinceTick = false
        state = .open(tuning, liveness)
        return send ? .send([AMQPFrame(channel: 0, payload: .heartbeat)]) : .none
    }

    /// Something (a method, content) went out: no heartbeat is needed this tick.
    mutating func frameSent() {
        if case .open(let tuning, var liveness) = state {
            liveness.sentSinceTick = true
            state = .open(tuning, liveness)
        }
    }

    /// The owner wants the connection closed cleanly.
    mutating func closeRequested() -> Action {
        switch state {
        case .open:
            state = .closing(error: nil)
            return .send([AMQPFrame(channel: 0, payload: .method(.connectionClose(replyCode: 200, replyText: "bye", classID: 0, methodID: 0)))])
        case .closing, .closed:
            return .none
        case .initialized, .awaitingStart, .awaitingTune, .awaitingOpenOk:
            state = .closed
            return .closeSocket(after: [], error: RabbitError(.connectionClosed, "closed before the connection was open"))
        }
    }

    /// The frame decoder failed: close with a protocol error (505 UNEXPECTED_FRAME / 501 FRAME_ERROR).
    mutating func decodingFailed(_ error: AMQPWireError) -> Action {
        let rabbitError = RabbitError(.protocolError, "\(error)", underlying: error)
        switch state {
        case .closed:
            return .none
        case .open:
            // No close-ok will be read from a stream we can no longer frame: close after sending.
            state = .closed
            return .closeSocket(
                after: [AMQPFrame(channel: 0, payload: .method(.connectionClose(replyCode: 501, replyText: "FRAME_ERROR", classID: 0, methodID: 0)))],
                error: rabbitError
            )
        default:
            state = .closed
            return .closeSocket(after: [], error: rabbitError)
        }
    }

    /// The socket closed (or failed).
    mutating func socketClosed() -> RabbitError? {
        defer { state = .closed }
        switch state {
        case .closed: return nil
        case .closing(let error): return error
        default: return RabbitError(.connectionClosed, "the server closed the connection")
        }
    }

    var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    // MARK: - Helpers

    private mutating func protocolViolation(_ text: String) -> Action {
        let error = RabbitError(.protocolError, text)
        switch state {
        case .open:
            state = .closing(error: error)
            return .send([AMQPFrame(channel: 0, payload: .method(.connectionClose(replyCode: 505, replyText: "UNEXPECTED_FRAME", classID: 0, methodID: 0)))])
        default:
            state = .closed
            return .closeSocket(after: [], error: error)
        }
    }

    /// The lower of two proposals, where 0 means "no limit" (so the other one wins).
    static func negotiate<T: FixedWidthInteger>(_ client: T, _ server: T) -> T {
        if client == 0 { return server }
        if server == 0 { return client }
        return min(client, server)
    }

    static func serverError(code: UInt16, text: String, classID: UInt16, methodID: UInt16, duringHandshake: Bool) -> RabbitError {
        if duringHandshake && code == 403 {
            return RabbitError(.authenticationFailed, "login refused: \(text)", replyCode: code)
        }
        if code == 320 {
            return RabbitError(.connectionClosed, "the server closed the connection: \(text)", replyCode: code)
        }
        let failing = classID == 0 ? "" : " (in method \(classID).\(methodID))"
        return RabbitError(.closedByServer, "\(code) \(text)\(failing)", replyCode: code)
    }
}
