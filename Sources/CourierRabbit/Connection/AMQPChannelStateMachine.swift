/// The protocol state of one AMQP channel, as ``AMQPConnectionStateMachine`` models the
/// connection's: events in, actions out, no I/O. The connection handler feeds it the channel's
/// frames and its own requests (a synchronous method, a publish, a consumer) and carries out what
/// it returns; everything a channel keeps lives here, testable event by event.
///
/// - Synchronous methods: one in flight per channel, as AMQP requires; the others wait their
///   turn, in order, and go out as the answer to the one before arrives.
/// - Content: a `basic.deliver` or `basic.return` is followed by a header and body frames, put
///   together into one message (``AMQPContentAssembly``).
/// - Publisher confirms (once `confirm.select` was asked for): each publish has the next
///   sequence number; `basic.ack`/`basic.nack` settle one or, with `multiple`, every one up to
///   the tag; a `basic.return` before its ack marks the oldest unconfirmed publish of that
///   message as returned, so its ack fails it as unroutable.
/// - The server's `channel.close` (a refused declaration, a publish to a missing exchange) is
///   answered with `close-ok` and fails what waits on the channel.
///
/// Generic over what waits (the handler's promises; plain values in tests) and over where a
/// consumer's deliveries go.
struct AMQPChannelStateMachine<CallWaiter, ConfirmWaiter, Sink> {
    /// A consumer of the channel: where its deliveries go, and whether that outlives the
    /// connection (a subscription the transport resumes on the next one).
    struct Consumer {
        var sink: Sink
        var outlivesConnection: Bool
    }

    /// A publish waiting for its confirm.
    struct Unconfirmed {
        var waiter: ConfirmWaiter
        var exchange: String
        var routingKey: String
        var messageID: String?
        /// Set by a `basic.return` for it (the reply code and text): its ack then fails it as
        /// unroutable.
        var returned: (code: UInt16, text: String)?
    }

    /// What a channel that ends leaves behind: every waiter fails with `error`, and the sinks
    /// finish.
    struct Failure {
        var error: RabbitError
        var calls: [CallWaiter]
        var confirms: [ConfirmWaiter]
        var finishedSinks: [Sink]
    }

    enum Action {
        case none
        /// Send this method on the channel.
        case send(AMQPMethod)
        /// `waiter`'s call was answered with `answer`; send `next` (the next call in line), if any.
        /// With `closesChannel` (the answer is `channel.close-ok`), the channel is gone.
        case answer(CallWaiter, AMQPMethod, next: AMQPMethod?, closesChannel: Bool)
        /// A message for a consumer.
        case deliver(AMQPDelivery, to: Sink)
        /// Publishes settled by an ack or nack, oldest first: nil is a success.
        case settle([(ConfirmWaiter, RabbitError?)])
        /// The server cancelled a consumer (its queue was deleted): its deliveries end.
        case finish(Sink)
        /// The server closed the channel: send `channel.close-ok`, then fail and finish what the
        /// failure holds; the channel is gone.
        case closedByServer(Failure)
    }

    let id: UInt16
    private var calls: [(method: AMQPMethod, waiter: CallWaiter)] = []
    private var assembly: AMQPContentAssembly?
    private var consumers: [String: Consumer] = [:]
    /// Whether `confirm.select` was asked for: from then on every publish has a sequence number.
    private(set) var confirmsSelected = false
    private var nextPublishSequence: UInt64 = 1
    private var unconfirmed: [UInt64: Unconfirmed] = [:]

    init(id: UInt16) {
        self.id = id
    }

    // MARK: - Requests

    /// Queues a synchronous method: `.send` when it is the one in flight now, `.none` when it
    /// waits for the calls before it.
    mutating func call(_ method: AMQPMethod, waiter: CallWaiter) -> Action {
        calls.append((method, waiter))
        if case .confirmSelect = method { confirmsSelected = true }
        return calls.count == 1 ? .send(method) : .none
    }

    /// Registers a consumer before its `basic.consume` goes out, so no delivery can come before
    /// there is somewhere to put it.
    mutating func addConsumer(tag: String, sink: Sink, outlivesConnection: Bool) {
        consumers[tag] = Consumer(sink: sink, outlivesConnection: outlivesConnection)
    }

    /// Records a publish made with confirms selected; `waiter` is settled by its ack or nack.
    /// Call only when ``confirmsSelected``.
    mutating func published(exchange: String, routingKey: String, messageID: String?, waiter: ConfirmWaiter) {
        unconfirmed[nextPublishSequence] = Unconfirmed(waiter: waiter, exchange: exchange, routingKey: routingKey, messageID: messageID)
        nextPublishSequence += 1
    }

    // MARK: - Frames

    /// A frame the server sent on this channel.
    /// - Throws: ``AMQPWireError`` for a frame out of place (content without its method, an
    ///   answer nobody asked for): a protocol violation, which closes the connection.
    mutating func frameReceived(_ payload: AMQPFrame.Payload) throws(AMQPWireError) -> Action {
        if var content = assembly {
            assembly = nil
            guard let message = try content.add(payload) else {
                assembly = content
                return .none
            }
            return contentComplete(message, content.kind)
        }
        guard case .method(let method) = payload else { throw .invalid("content frame without a method on channel \(id)") }
        switch method {
        case .basicDeliver(let tag, let deliveryTag, let redelivered, let exchange, let routingKey):
            assembly = AMQPContentAssembly(kind: .delivery(consumerTag: tag, deliveryTag: deliveryTag, redelivered: redelivered, exchange: exchange, routingKey: routingKey))
            return .none
        case .basicReturn(let code, let text, let exchange, let routingKey):
            assembly = AMQPContentAssembly(kind: .returned(replyCode: code, replyText: text, exchange: exchange, routingKey: routingKey))
            return .none
        case .basicAck(let tag, let multiple):
            return confirm(tag, multiple: multiple, ok: true)
        case .basicNack(let tag, let multiple, _):
            return confirm(tag, multiple: multiple, ok: false)
        case .basicCancel(let tag, _):
            guard let consumer = consumers.removeValue(forKey: tag) else { return .none }
            return .finish(consumer.sink)
        case .channelClose(let code, let text, let classID, let methodID):
            let error = AMQPConnectionStateMachine.serverError(code: code, text: text, classID: classID, methodID: methodID, duringHandshake: false)
            return .closedByServer(end(error, connectionLost: false))
        case .channelFlow(let active):
            return .send(.channelFlowOk(active: active))
        default:
            guard !calls.isEmpty else { throw .invalid("unexpected \(method.id.classID).\(method.id.methodID) on channel \(id)") }
            let call = calls.removeFirst()
            if case .channelCloseOk = method {
                return .answer(call.waiter, method, next: nil, closesChannel: true)
            }
            return .answer(call.waiter, method, next: calls.first?.method, closesChannel: false)
        }
    }

    /// The connection is gone: every waiter fails, and the consumers finish, but those that
    /// outlive the connection.
    mutating func connectionLost(_ error: RabbitError) -> Failure {
        end(error, connectionLost: true)
    }

    // MARK: - Helpers

    private mutating func contentComplete(_ message: AMQPDelivery, _ kind: AMQPContentAssembly.Kind) -> Action {
        switch kind {
        case .delivery(let tag, _, _, _, _):
            // A delivery for a consumer already gone is dropped: nobody reads it (an unacked one
            // is redelivered once the channel closes).
            guard let consumer = consumers[tag] else { return .none }
            return .deliver(message, to: consumer.sink)
        case .returned(let code, let text, let exchange, let routingKey):
            // The oldest unconfirmed publish of this message is the one returned; its ack follows.
            let match = unconfirmed.filter { entry in
                entry.value.returned == nil && entry.value.exchange == exchange && entry.value.routingKey == routingKey
                    && entry.value.messageID == message.properties.messageID
            }
            if let sequence = match.keys.min() { unconfirmed[sequence]?.returned = (code, text) }
            return .none
        }
    }

    private mutating func confirm(_ tag: UInt64, multiple: Bool, ok: Bool) -> Action {
        let sequences = multiple ? unconfirmed.keys.filter { $0 <= tag }.sorted() : (unconfirmed[tag] != nil ? [tag] : [])
        guard !sequences.isEmpty else { return .none }
        var settled: [(ConfirmWaiter, RabbitError?)] = []
        settled.reserveCapacity(sequences.count)
        for sequence in sequences {
            guard let waiting = unconfirmed.removeValue(forKey: sequence) else { continue }
            if let returned = waiting.returned {
                settled.append((
                    waiting.waiter,
                    RabbitError(
                        .publishRefused,
                        "returned as unroutable: \(returned.code) \(returned.text) (exchange '\(waiting.exchange)', routing key '\(waiting.routingKey)')",
                        replyCode: returned.code
                    )
                ))
            } else if ok {
                settled.append((waiting.waiter, nil))
            } else {
                settled.append((waiting.waiter, RabbitError(.publishRefused, "the server nacked the publish to exchange '\(waiting.exchange)', routing key '\(waiting.routingKey)'")))
            }
        }
        return .settle(settled)
    }

    private mutating func end(_ error: RabbitError, connectionLost: Bool) -> Failure {
        let failure = Failure(
            error: error,
            calls: calls.map(\.waiter),
            confirms: unconfirmed.keys.sorted().compactMap { unconfirmed[$0]?.waiter },
            finishedSinks: consumers.values.filter { !(connectionLost && $0.outlivesConnection) }.map(\.sink)
        )
        calls = []
        unconfirmed = [:]
        consumers = [:]
        assembly = nil
        return failure
    }
}
