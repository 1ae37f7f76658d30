import NIOCore

/// Translates NIO's callbacks on a Redis channel into events for
/// ``RedisConnectionStateMachine`` and carries out the actions it returns.
///
/// It decides nothing itself; it holds only what acting needs: the context, the commands'
/// timers, and the promise ``RedisConnection`` waits on until the handshake is done. It sits
/// after the `RESPDecoder` (and the TLS handler, when there is one) and is the last handler of
/// the pipeline.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Command
    typealias OutboundOut = ByteBuffer

    private typealias StateMachine = RedisConnectionStateMachine<EventLoopPromise<RESPValue>>

    /// A command on its way out.
    struct Command: Sendable {
        /// The command, encoded.
        var bytes: ByteBuffer
        /// Its name, for errors.
        var name: String
        /// Who waits for the reply; nil for a command whose answers arrive as pushes (SUBSCRIBE
        /// and friends).
        ///
        /// Once the handler has the command, it alone completes this promise, and it succeeds the
        /// write's promise at once to say so: a failed write promise therefore means the command
        /// never got here (the channel had closed) and the sender completes the reply itself.
        var reply: EventLoopPromise<RESPValue>?
        /// How long the reply may take; nil waits as long as it takes.
        var timeout: Duration?
    }

    private var stateMachine: StateMachine
    private let handshakeTimeout: Duration?
    private let handshakePromise: EventLoopPromise<Bool>
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private var context: ChannelHandlerContext?
    private var commandTimers: [StateMachine.RequestID: Scheduled<Void>] = [:]
    private var handshakeTimer: Scheduled<Void>?

    /// - Parameters:
    ///   - handshake: what to send before the connection is ready.
    ///   - handshakeTimeout: how long the handshake may take; nil for as long as it takes.
    ///   - eventLoop: the channel's event loop.
    ///   - onPush: receives pushes (and a RESP2 subscribed connection's messages), on the event loop.
    init(
        handshake: RedisConnectionStateMachine<EventLoopPromise<RESPValue>>.Handshake,
        handshakeTimeout: Duration?,
        eventLoop: any EventLoop,
        onPush: (@Sendable (RESPValue) -> Void)?
    ) {
        self.stateMachine = StateMachine(handshake: handshake)
        self.handshakeTimeout = handshakeTimeout
        self.handshakePromise = eventLoop.makePromise(of: Bool.self)
        self.onPush = onPush
    }

    /// Succeeds with whether the connection speaks RESP3 once the handshake is done; fails with
    /// the reason the connection closed before.
    var handshakeCompleted: EventLoopFuture<Bool> { handshakePromise.futureResult }

    // MARK: - NIO's callbacks

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Also the end of a channel that never became active (its connect failed): the handshake
        // promise must not be left waiting.
        perform(stateMachine.channelInactive(), context: context)
        handshakeTimer?.cancel()
        handshakeTimer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(stateMachine.channelInactive(), context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push = value {
            perform(stateMachine.pushReceived(value), context: context)
        } else {
            perform(stateMachine.replyReceived(value), context: context, flush: true)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Ends here: the state machine closes the connection and fails what waits.
        perform(stateMachine.errorCaught(error), context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        if let reply = command.reply {
            promise?.succeed()
            perform(stateMachine.commandEnqueued(command.bytes, name: command.name, request: reply, timeout: command.timeout), context: context)
        } else {
            perform(stateMachine.commandWithoutReplyEnqueued(command.bytes, name: command.name), context: context, writePromise: promise)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all {
            perform(stateMachine.closeRequested(), context: context)
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: - Carrying out actions

    private func start(context: ChannelHandlerContext) {
        let action = stateMachine.channelActive()
        if case .write = action, handshakeTimer == nil, let handshakeTimeout {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(handshakeTimeout)) {
                handler.value.handshakeTimedOut()
            }
        }
        perform(action, context: context, flush: true)
    }

    private func handshakeTimedOut() {
        handshakeTimer = nil
        guard let context else { return }
        perform(stateMachine.handshakeTimedOut(), context: context)
    }

    private func commandTimedOut(_ id: StateMachine.RequestID) {
        commandTimers[id] = nil
        guard let context else { return }
        perform(stateMachine.commandTimedOut(id), context: context)
    }

    /// - Parameters:
    ///   - writePromise: the promise of the write that caused the action, for `.write` and
    ///     `.rejectWrite`.
    ///   - flush: whether a write flushes at once. Commands from callers do not: the caller's
    ///     flush follows (and a pipeline of commands goes out together); handshake commands,
    ///     written in answer to the server, do.
    private func perform(
        _ action: StateMachine.Action,
        context: ChannelHandlerContext,
        writePromise: EventLoopPromise<Void>? = nil,
        flush: Bool = false
    ) {
        switch action {
        case .none:
            break
        case .write(let bytes):
            context.write(wrapOutboundOut(bytes), promise: writePromise)
            if flush { context.flush() }
        case .writeCommand(let bytes, let id, let timeout):
            if let timeout {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                commandTimers[id] = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                    handler.value.commandTimedOut(id)
                }
            }
            context.write(wrapOutboundOut(bytes), promise: nil)
            if flush { context.flush() }
        case .completeHandshake(let isRESP3):
            handshakeTimer?.cancel()
            handshakeTimer = nil
            handshakePromise.succeed(isRESP3)
        case .succeedRequest(let id, let promise, let value):
            commandTimers.removeValue(forKey: id)?.cancel()
            promise.succeed(value)
        case .failRequest(let id, let promise, let error):
            commandTimers.removeValue(forKey: id)?.cancel()
            promise.fail(error)
        case .rejectWrite(let error):
            writePromise?.fail(error)
        case .forwardPush(let value):
            onPush?(value)
        case .closeConnection(let cleanup):
            fail(cleanup)
            context.close(promise: nil)
        case .failPending(let cleanup):
            fail(cleanup)
        }
    }

    private func fail(_ cleanup: StateMachine.Cleanup) {
        if cleanup.failsHandshake {
            handshakeTimer?.cancel()
            handshakeTimer = nil
            handshakePromise.fail(cleanup.error)
        }
        for (id, promise) in cleanup.requests {
            commandTimers.removeValue(forKey: id)?.cancel()
            promise.fail(cleanup.error)
        }
        // Every running timer belonged to a request just failed; none may outlive the connection.
        for timer in commandTimers.values { timer.cancel() }
        commandTimers.removeAll()
    }
}
