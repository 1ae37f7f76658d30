@_spi(BrokerModule) import Courier
import NIOCore

/// Drives one AMQP connection on its event loop: frames in from the decoder, bytes out; the
/// connection's lifecycle is ``AMQPConnectionStateMachine``'s, this handler only carries out
/// its actions and keeps each channel's bookkeeping (the method in flight, content being put
/// together, consumers, publisher confirms).
final class AMQPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = AMQPFrame
    typealias OutboundIn = AMQPFrame
    typealias OutboundOut = ByteBuffer

    /// One channel's state, on the event loop.
    struct ChannelState {
        /// Synchronous methods: the first is in flight, the others wait their turn.
        var calls: [(method: AMQPMethod, promise: EventLoopPromise<AMQPMethod>)] = []
        var assembly: AMQPContentAssembly?
        var consumers: [String: Consumer] = [:]
        /// Publisher confirms, once selected: the next sequence number and who waits for which.
        var confirmsSelected = false
        var nextPublishSequence: UInt64 = 1
        var unconfirmed: [UInt64: (promise: EventLoopPromise<Void>, exchange: String, routingKey: String, messageID: String?)] = [:]
        var returned: [UInt64: String] = [:]
    }

    /// Where a consumer's deliveries go. A buffer that outlives its connection (a subscription
    /// the transport resumes on the next one) is left open when the connection is lost; the
    /// server's `basic.cancel` or a closed channel still finish it.
    struct Consumer {
        var buffer: AsyncBuffer<AMQPDelivery>
        var outlivesConnection: Bool
    }

    private var machine: AMQPConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var channels: [UInt16: ChannelState] = [:]
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
        for (_, state) in channels { Self.fail(state, error, connectionLost: true) }
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
        channels[id] = ChannelState()
        return call(.channelOpen, on: id).map { _ in id }
    }

    /// Sends a synchronous method on `channel` and completes with the server's answer. One is in
    /// flight per channel at a time, as AMQP requires; the others wait their turn.
    func call(_ method: AMQPMethod, on channel: UInt16) -> EventLoopFuture<AMQPMethod> {
        guard let context else { return connected.futureResult.eventLoop.makeFailedFuture(RabbitError(.connectionClosed, "not connected")) }
        guard var state = channels[channel] else { return context.eventLoop.makeFailedFuture(RabbitError(.connectionClosed, "channel \(channel) is closed")) }
        let promise = context.eventLoop.makePromise(of: AMQPMethod.self)
        state.calls.append((method, promise))
        if case .confirmSelect = method { state.confirmsSelected = true }
        let first = state.calls.count == 1
        channels[channel] = state
        if first { write([AMQPFrame(channel: channel, payload: .method(method))], context: context) }
        return promise.futureResult
    }

    /// Registers a consumer's buffer before its `basic.consume` goes out, so no delivery can
    /// come before there is somewhere to put it.
    func addConsumer(tag: String, buffer: AsyncBuffer<AMQPDelivery>, outlivesConnection: Bool, on channel: UInt16) {
        channels[channel]?.consumers[tag] = Consumer(buffer: buffer, outlivesConnection: outlivesConnection)
    }

    /// Publishes a message; with confirms selected on the channel, the future completes when the
    /// server confirmed it (and fails when it nacked it or returned it as unroutable).
    func publish(exchange: String, routingKey: String, mandatory: Bool, properties: AMQPBasicProperties, body: ByteBuffer, on channel: UInt16) -> EventLoopFuture<Void> {
        guard let context, let tuning else { return connected.futureResult.eventLoop.makeFailedFuture(closeError ?? RabbitError(.connectionClosed, "not connected")) }
        guard var state = channels[channel] else { return context.eventLoop.makeFailedFuture(RabbitError(.connectionClosed, "channel \(channel) is closed")) }
        var frames = [
            AMQPFrame(channel: channel, payload: .method(.basicPublish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, immediate: false))),
            AMQPFrame(channel: channel, payload: .header(classID: 60, bodySize: UInt64(body.readableBytes), properties: properties)),
        ]
        // Bodies split at frame-max, less the frame's own 8 bytes.
        let chunk = max(1, Int(tuning.frameMax == 0 ? 131_072 : tuning.frameMax) - AMQPFrame.overhead)
        var rest = body
        while rest.readableBytes > 0 { frames.append(AMQPFrame(channel: channel, payload: .body(rest.readSlice(length: min(chunk, rest.readableBytes))!))) }
        let written: EventLoopFuture<Void>
        if blockedReason != nil {
            // Sequence numbers still count in publish order: held publishes go out in that order.
            heldPublishes.append(frames)
            written = context.eventLoop.makeSucceededVoidFuture()
        } else {
            written = write(frames, context: context)
        }
        guard state.confirmsSelected else { return written }
        let promise = context.eventLoop.makePromise(of: Void.self)
        let sequence = state.nextPublishSequence
        state.nextPublishSequence += 1
        state.unconfirmed[sequence] = (promise, exchange, routingKey, properties.messageID)
        // Written back only while the channel is still there: a write that failed at once may
        // have closed the connection, and with it every channel's state.
        if channels[channel] != nil { channels[channel] = state } else { promise.fail(closeError ?? RabbitError(.connectionClosed, "channel \(channel) is closed")) }
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
        let id = frame.channel
        guard var state = channels[id] else { return }  // a channel we closed: drop what is still in flight
        defer { if channels[id] != nil { channels[id] = state } }
        do throws(AMQPWireError) {
            if var assembly = state.assembly {
                state.assembly = nil
                if let message = try assembly.add(frame.payload) {
                    deliver(message, assembly.kind, state: &state)
                } else {
                    state.assembly = assembly
                }
                return
            }
            guard case .method(let method) = frame.payload else { throw AMQPWireError.invalid("content frame without a method on channel \(id)") }
            switch method {
            case .basicDeliver(let tag, let deliveryTag, let redelivered, let exchange, let routingKey):
                state.assembly = AMQPContentAssembly(kind: .delivery(consumerTag: tag, deliveryTag: deliveryTag, redelivered: redelivered, exchange: exchange, routingKey: routingKey))
            case .basicReturn(let code, let text, let exchange, let routingKey):
                state.assembly = AMQPContentAssembly(kind: .returned(replyCode: code, replyText: text, exchange: exchange, routingKey: routingKey))
            case .basicAck(let tag, let multiple):
                confirm(tag, multiple: multiple, ok: true, state: &state)
            case .basicNack(let tag, let multiple, _):
                confirm(tag, multiple: multiple, ok: false, state: &state)
            case .basicCancel(let tag, _):
                // The server cancelled the consumer (its queue was deleted): its deliveries end.
                state.consumers.removeValue(forKey: tag)?.buffer.finish()
            case .channelClose(let code, let text, let classID, let methodID):
                let error = AMQPConnectionStateMachine.serverError(code: code, text: text, classID: classID, methodID: methodID, duringHandshake: false)
                write([AMQPFrame(channel: id, payload: .method(.channelCloseOk))], context: context)
                Self.fail(state, error, connectionLost: false)
                channels[id] = nil
            case .channelFlow(let active):
                write([AMQPFrame(channel: id, payload: .method(.channelFlowOk(active: active)))], context: context)
            default:
                guard !state.calls.isEmpty else { throw AMQPWireError.invalid("unexpected \(method.id.classID).\(method.id.methodID) on channel \(id)") }
                let call = state.calls.removeFirst()
                if case .channelCloseOk = method { channels[id] = nil }
                call.promise.succeed(method)
                if let next = state.calls.first { write([AMQPFrame(channel: id, payload: .method(next.method))], context: context) }
            }
        } catch {
            run(machine.decodingFailed(error), context: context)
        }
    }

    private func deliver(_ message: AMQPDelivery, _ kind: AMQPContentAssembly.Kind, state: inout ChannelState) {
        switch kind {
        case .delivery(let tag, _, _, _, _):
            // A consumer's buffer is unbounded here: the server sends no more than the qos
            // prefetch allows before acks, which bounds it.
            state.consumers[tag]?.buffer.append(message)
        case .returned(let code, let text, let exchange, let routingKey):
            // The oldest unconfirmed publish of this message is the one returned; its ack follows.
            let match = state.unconfirmed.filter { $0.value.exchange == exchange && $0.value.routingKey == routingKey && $0.value.messageID == message.properties.messageID }
            if let sequence = match.keys.min() { state.returned[sequence] = "\(code) \(text)" }
        }
    }

    private func confirm(_ tag: UInt64, multiple: Bool, ok: Bool, state: inout ChannelState) {
        let sequences = multiple ? state.unconfirmed.keys.filter { $0 <= tag } : (state.unconfirmed[tag] != nil ? [tag] : [])
        for sequence in sequences.sorted() {
            guard let waiting = state.unconfirmed.removeValue(forKey: sequence) else { continue }
            if let returned = state.returned.removeValue(forKey: sequence) {
                waiting.promise.fail(RabbitError(.publishRefused, "returned as unroutable: \(returned) (exchange '\(waiting.exchange)', routing key '\(waiting.routingKey)')"))
            } else if ok {
                waiting.promise.succeed(())
            } else {
                waiting.promise.fail(RabbitError(.publishRefused, "the server nacked the publish to exchange '\(waiting.exchange)', routing key '\(waiting.routingKey)'"))
            }
        }
    }

    private static func fail(_ state: ChannelState, _ error: RabbitError, connectionLost: Bool) {
        for call in state.calls { call.promise.fail(error) }
        for (_, waiting) in state.unconfirmed { waiting.promise.fail(error) }
        for (_, consumer) in state.consumers where !(connectionLost && consumer.outlivesConnection) { consumer.buffer.finish() }
    }
}
