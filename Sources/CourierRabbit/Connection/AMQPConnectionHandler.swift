@_spi(BrokerModule) import Courier
import NIOCore

/// Drives one AMQP connection on its event loop: frames in from the decoder, bytes out. The
/// connection's lifecycle is ``AMQPConnectionStateMachine``'s and each channel's is an
/// ``AMQPChannelStateMachine``'s; this handler only carries out their actions.
final class AMQPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = AMQPFrame
    typealias OutboundIn = AMQPFrame
    typealias OutboundOut = ByteBuffer

    /// One channel: its calls wait on promises, its consumers' deliveries go to hand-off queues.
    typealias ChannelMachine = AMQPChannelStateMachine<EventLoopPromise<AMQPMethod>, EventLoopPromise<Void>, HandOffQueue<AMQPDelivery>>

    private var machine: AMQPConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var channels: [UInt16: ChannelMachine] = [:]
    private var nextChannelID: UInt16 = 1
    private var heartbeatTask: RepeatedTask?
    /// While the server has blocked the connection (`connection.blocked`: it is low on memory or
    /// disk and stops reading from publishers), publishes wait here, in order, instead of
    /// filling the socket; `connection.unblocked` sends them.
    private var blockedReason: String?
    private var heldPublishes: [[AMQPFrame]] = []
    private(set) var tuning: AMQPConnectionStateMachine.Tuning?
    let connected: EventLoopPromise<AMQPConnectionStateMachine.Tuning>
    let closed: EventLoopPromise<Void>
    /// Why the connection closed (or is closing), once it does.
    private(set) var closeError: RabbitError?
    private let onFrameMax: (Int) -> Void

    init(configuration: AMQPConnectionStateMachine.Configuration, eventLoop: any EventLoop, onFrameMax: @escaping (Int) -> Void) {
        self.machine = AMQPConnectionStateMachine(configuration: configuration)
        self.connected = eventLoop.makePromise()
        self.closed = eventLoop.makePromise()
        self.onFrameMax = onFrameMax
    }

    // MARK: - Socket events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { run(machine.connected(), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        run(machine.connected(), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        run(machine.frameReceived(unwrapInboundIn(data)), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wireError = error as? AMQPWireError {
            run(machine.decodingFailed(wireError), context: context)
        } else {
            closeError = closeError ?? RabbitError(.connectionClosed, "the connection failed: \(error)", underlying: error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // What made it close (an error caught, a frame the machine refused) says more than the
        // machine's view of the socket going.
        let socketError = machine.socketClosed()
        let error = closeError ?? socketError ?? RabbitError(.connectionClosed, "the connection closed")
        closeError = error
        heartbeatTask?.cancel()
        connected.fail(error)
        for id in Array(channels.keys) {
            if let failure = channels[id]?.connectionLost(error) { Self.carryOut(failure) }
        }
        channels = [:]
        closed.succeed(())
        context.fireChannelInactive()
    }

    // MARK: - Actions

    private func run(_ action: AMQPConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .sendProtocolHeader:
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: AMQPFrame.protocolHeader)), promise: nil)
        case .send(let frames):
            write(frames, context: context)
        case .connected(let tuning):
            self.tuning = tuning
            onFrameMax(Int(tuning.frameMax))
            if tuning.heartbeat > 0 {
                let interval = TimeAmount.milliseconds(Int64(tuning.heartbeat) * 500)
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                heartbeatTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    guard let context = handler.value.context else { return }
                    handler.value.run(handler.value.machine.heartbeatTick(), context: context)
                }
            }
            connected.succeed(tuning)
        case .forward(let frame):
            channelFrame(frame, context: context)
        case .blocked(let reason):
            blockedReason = reason
        case .unblocked:
            blockedReason = nil
            let held = heldPublishes
            heldPublishes = []
            for frames in held { write(frames, context: context) }
        case .closeSocket(let frames, let error):
            closeError = error
            if frames.isEmpty {
                context.close(promise: nil)
            } else {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                write(frames, context: context).whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }

    @discardableResult
    private func write(_ frames: [AMQPFrame], context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        for frame in frames {
            do {
                try frame.encode(into: &buffer)
            } catch {
                return context.eventLoop.makeFailedFuture(RabbitError(.protocolError, "cannot write \(frame): \(error)", underlying: error))
            }
        }
        if frames.contains(where: { $0.payload != .heartbeat }) { machine.frameSent() }
        return context.writeAndFlush(wrapOutboundOut(buffer))
    }

    // MARK: - Channels

    /// Opens a channel; the future has its number once the server opened it.
    func openChannel() -> EventLoopFuture<UInt16> {
        guard let context, machine.isOpen, let tuning else {
            return connected.futureResult.eventLoop.makeFailedFuture(closeError ?? RabbitError(.connectionClosed, "the connection is not open"))
        }
        let limit = tuning.channelMax == 0 ? UInt16.max : tuning.channelMax
        guard let id = (nextChannelID...limit).first(where: { channels[$0] == nil }) ?? (1...limit).first(where: { channels[$0] == nil }) else {
            return context.eventLoop.makeFailedFuture(RabbitError(.protocolError, "all \(limit) channels are in use"))
        }
        nextChannelID = id == limit ? 1 : id + 1
        channels[id] = ChannelMachine(id: id)
        return call(.channelOpen, on: id).map { _ in id }
    }

    /// Sends a synchronous method on `channel` and completes with the server's answer. One is in
    /// flight per channel at a time, as AMQP requires; the others wait their turn.
    func call(_ method: AMQPMethod, on channel: UInt16) -> EventLoopFuture<AMQPMethod> {
        guard let context else { return connected.futureResult.eventLoop.makeFailedFuture(RabbitError(.connectionClosed, "not connected")) }
        let promise = context.eventLoop.makePromise(of: AMQPMethod.self)
        guard let action = channels[channel]?.call(method, waiter: promise) else {
            promise.fail(RabbitError(.connectionClosed, "channel \(channel) is closed"))
            return promise.futureResult
        }
        run(action, on: channel, context: context)
        return promise.futureResult
    }

    /// Registers a consumer's buffer before its `basic.consume` goes out, so no delivery can
    /// come before there is somewhere to put it.
    func addConsumer(tag: String, buffer: HandOffQueue<AMQPDelivery>, outlivesConnection: Bool, on channel: UInt16) {
        channels[channel]?.addConsumer(tag: tag, sink: buffer, outlivesConnection: outlivesConnection)
    }

    /// Publishes a message; with confirms selected on the channel, the future completes when the
    /// server confirmed it (and fails when it nacked it or returned it as unroutable).
    func publish(exchange: String, routingKey: String, mandatory: Bool, properties: AMQPBasicProperties, body: ByteBuffer, on channel: UInt16) -> EventLoopFuture<Void> {
        guard let context, let tuning else { return connected.futureResult.eventLoop.makeFailedFuture(closeError ?? RabbitError(.connectionClosed, "not connected")) }
        guard channels[channel] != nil else { return context.eventLoop.makeFailedFuture(RabbitError(.connectionClosed, "channel \(channel) is closed")) }
        var frames = [
            AMQPFrame(channel: channel, payload: .method(.basicPublish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, immediate: false))),
            AMQPFrame(channel: channel, payload: .header(classID: 60, bodySize: UInt64(body.readableBytes), properties: properties)),
        ]
        // Bodies split at frame-max, less the frame's own 8 bytes.
        let chunk = max(1, Int(tuning.frameMax == 0 ? 131_072 : tuning.frameMax) - AMQPFrame.overhead)
        var rest = body
        while rest.readableBytes > 0, let slice = rest.readSlice(length: min(chunk, rest.readableBytes)) {
            frames.append(AMQPFrame(channel: channel, payload: .body(slice)))
        }
        let written: EventLoopFuture<Void>
        if blockedReason != nil {
            // Sequence numbers still count in publish order: held publishes go out in that order.
            heldPublishes.append(frames)
            written = context.eventLoop.makeSucceededVoidFuture()
        } else {
            written = write(frames, context: context)
        }
        // A write that failed at once may have closed the connection, and with it every channel.
        guard let confirms = channels[channel]?.confirmsSelected else {
            return context.eventLoop.makeFailedFuture(closeError ?? RabbitError(.connectionClosed, "channel \(channel) is closed"))
        }
        guard confirms else { return written }
        let promise = context.eventLoop.makePromise(of: Void.self)
        channels[channel]?.published(exchange: exchange, routingKey: routingKey, messageID: properties.messageID, waiter: promise)
        return promise.futureResult
    }

    /// Acks, nacks or rejects a delivery; fire and forget, as AMQP has no answer to them.
    func settle(_ method: AMQPMethod, on channel: UInt16) {
        guard let context, channels[channel] != nil else { return }
        write([AMQPFrame(channel: channel, payload: .method(method))], context: context)
    }

    /// Closes the connection cleanly; the future completes once the socket closed.
    func close() -> EventLoopFuture<Void> {
        if let context { run(machine.closeRequested(), context: context) }
        return closed.futureResult
    }

    private func channelFrame(_ frame: AMQPFrame, context: ChannelHandlerContext) {
        let action: ChannelMachine.Action?
        do throws(AMQPWireError) {
            action = try channels[frame.channel]?.frameReceived(frame.payload)
        } catch {
            run(machine.decodingFailed(error), context: context)
            return
        }
        // None: a channel we closed; what is still in flight on it is dropped.
        if let action { run(action, on: frame.channel, context: context) }
    }

    /// Carries out what a channel's machine asked for.
    private func run(_ action: ChannelMachine.Action, on channel: UInt16, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .send(let method):
            write([AMQPFrame(channel: channel, payload: .method(method))], context: context)
        case .answer(let waiter, let answer, let next, let closesChannel):
            if closesChannel { channels[channel] = nil }
            waiter.succeed(answer)
            if let next { write([AMQPFrame(channel: channel, payload: .method(next))], context: context) }
        case .deliver(let message, let buffer):
            // A consumer's buffer is unbounded here: the server sends no more than the qos
            // prefetch allows before acks, which bounds it.
            buffer.append(message)
        case .settle(let settled):
            for (waiter, error) in settled {
                if let error { waiter.fail(error) } else { waiter.succeed(()) }
            }
        case .finish(let buffer):
            buffer.finish()
        case .closedByServer(let failure):
            channels[channel] = nil
            write([AMQPFrame(channel: channel, payload: .method(.channelCloseOk))], context: context)
            Self.carryOut(failure)
        }
    }

    private static func carryOut(_ failure: ChannelMachine.Failure) {
        for waiter in failure.calls { waiter.fail(failure.error) }
        for waiter in failure.confirms { waiter.fail(failure.error) }
        for buffer in failure.finishedSinks { buffer.finish() }
    }
}
