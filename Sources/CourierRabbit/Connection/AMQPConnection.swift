@_spi(BrokerModule) import Courier
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One AMQP 0-9-1 connection on SwiftNIO: the handshake, channels, heartbeats and a clean close.
/// The wire is ``AMQPFrame``'s, the lifecycle ``AMQPConnectionStateMachine``'s; this type is the
/// async surface the broker uses.
package final class AMQPConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<AMQPConnectionHandler>
    let tuning: AMQPConnectionStateMachine.Tuning

    /// Why it closed, once it has.
    private let closedBecause = Mutex<RabbitError?>(nil)

    private init(channel: any Channel, handler: NIOLoopBound<AMQPConnectionHandler>, tuning: AMQPConnectionStateMachine.Tuning) {
        self.channel = channel
        self.handler = handler
        self.tuning = tuning
        // Kept where anyone can read it at once: the handler's, on its event loop, as it closed.
        channel.closeFuture.whenComplete { [weak self] _ in
            let reason = handler.value.closeError
            self?.closedBecause.withLock { $0 = reason }
        }
    }

    /// Connects to `host:port` (over TLS with `tls`) and runs the handshake.
    static func connect(
        host: String,
        port: Int,
        configuration: AMQPConnectionStateMachine.Configuration,
        tls: TLSConfiguration? = nil,
        connectTimeout: Duration = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> AMQPConnection {
        let sslContext: NIOSSLContext?
        do {
            sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw RabbitError(.invalidTLSConfiguration, "invalid TLS configuration: \(error)", underlying: error)
        }
        let eventLoop = group.next()
        // The handler of each channel the bootstrap tries (happy eyeballs may try several), kept
        // here: a failed attempt removes its handlers before the winner is handed over.
        let handlers = NIOLoopBoundBox.makeBoxSendingValue(
            [ObjectIdentifier: AMQPConnectionHandler](),
            as: [ObjectIdentifier: AMQPConnectionHandler].self,
            eventLoop: eventLoop
        )
        let serverHostname = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(connectTimeout.wholeMilliseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    }
                    let limit = AMQPFrameDecoder.Limit()
                    let handler = AMQPConnectionHandler(configuration: configuration, eventLoop: channel.eventLoop) { limit.maximumFrameSize = $0 }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AMQPFrameDecoder(limit: limit)))
                    // Many tasks publishing and acking at once: one write(2) per event-loop tick.
                    try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
                    try channel.pipeline.syncOperations.addHandler(handler)
                    handlers.value[ObjectIdentifier(channel)] = handler
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw RabbitError(.connectionClosed, "cannot connect to \(host):\(port): \(error)", underlying: error)
        }
        let handler = try await eventLoop.submit {
            let handler = handlers.value[ObjectIdentifier(channel)]!
            handlers.value = [:]
            return NIOLoopBound(handler, eventLoop: eventLoop)
        }.get()
        let tuning = try await eventLoop.flatSubmit { handler.value.connected.futureResult }.get()
        return AMQPConnection(channel: channel, handler: handler, tuning: tuning)
    }

    /// Opens a channel.
    package func openChannel() async throws -> AMQPChannel {
        let handler = self.handler
        let id = try await channel.eventLoop.flatSubmit { handler.value.openChannel() }.get()
        return AMQPChannel(id: id, connection: self)
    }

    func call(_ method: AMQPMethod, on id: UInt16) async throws -> AMQPMethod {
        let handler = self.handler
        return try await channel.eventLoop.flatSubmit { handler.value.call(method, on: id) }.get()
    }

    /// Publishes `messages` in order, written together, then waits for every confirm; throws
    /// the first failure in publish order.
    ///
    /// - Parameter deadline: when to stop waiting for the confirms (``RabbitError`` `.timeout`);
    ///   nil waits for them (or the connection's end). Cancellation ends the wait at once.
    func publish(_ messages: [AMQPPublish], on id: UInt16, deadline: ContinuousClock.Instant? = nil) async throws {
        let handler = self.handler
        let eventLoop = channel.eventLoop
        let confirms = try await eventLoop.submit {
            messages.map { handler.value.publish(exchange: $0.exchange, routingKey: $0.routingKey, mandatory: $0.mandatory, properties: $0.properties, body: $0.body, on: id) }
        }.get()
        let confirmed = EventLoopFuture.whenAllComplete(confirms, on: eventLoop)
        if let deadline {
            let settled = Latch()
            confirmed.whenComplete { _ in settled.open() }
            await settled.wait(until: deadline)
            if !settled.isOpen {
                try Task.checkCancellation()
                throw RabbitError(.timeout, "RabbitMQ did not confirm the publish in time (it may still route it)")
            }
        }
        for result in try await confirmed.get() {
            try result.get()
        }
    }

    func settle(_ method: AMQPMethod, on id: UInt16) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.settle(method, on: id) }
    }

    func addConsumer(tag: String, buffer: HandOffQueue<AMQPDelivery>, outlivesConnection: Bool, on id: UInt16) async throws {
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.addConsumer(tag: tag, buffer: buffer, outlivesConnection: outlivesConnection, on: id) }.get()
    }

    /// Closes cleanly: `connection.close`, `close-ok`, the socket.
    package func close() async {
        let handler = self.handler
        _ = try? await channel.eventLoop.flatSubmit { handler.value.close() }.get()
    }

    /// Completes when the connection is gone, for whatever reason.
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Why the connection closed: the server's `connection.close`, a missed heartbeat, a
    /// protocol error, the socket; nil while it is open.
    var closeReason: RabbitError? {
        closedBecause.withLock { $0 }
    }

    /// Whether the socket is still open (false once the connection is lost or closed).
    var isOpen: Bool { channel.isActive }
}

/// One channel of a connection: declares, consumes, publishes and settles.
package struct AMQPChannel: Sendable {
    let id: UInt16
    let connection: AMQPConnection

    @discardableResult
    package func call(_ method: AMQPMethod) async throws -> AMQPMethod {
        try await connection.call(method, on: id)
    }

    /// Turns publisher confirms on: every publish then waits for the server's ack.
    package func selectConfirms() async throws {
        try await call(.confirmSelect(noWait: false))
    }

    package func publish(exchange: String = "", routingKey: String, mandatory: Bool = true, properties: AMQPBasicProperties = AMQPBasicProperties(), body: ByteBuffer) async throws {
        try await connection.publish([AMQPPublish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, body: body)], on: id)
    }

    /// Publishes `messages` in order and waits for all their confirms (one round trip for all),
    /// until `deadline` if there is one.
    package func publish(_ messages: [AMQPPublish], deadline: ContinuousClock.Instant? = nil) async throws {
        try await connection.publish(messages, on: id, deadline: deadline)
    }

    /// Starts a consumer of `queue`; its deliveries arrive in the returned buffer, which ends
    /// with the channel.
    package func consume(queue: String, tag: String, noAck: Bool = false, arguments: AMQPFieldTable = [:]) async throws -> HandOffQueue<AMQPDelivery> {
        let buffer = HandOffQueue<AMQPDelivery>()
        try await consume(queue: queue, tag: tag, into: buffer, outlivesConnection: false, noAck: noAck, arguments: arguments)
        return buffer
    }

    /// Starts a consumer of `queue` whose deliveries go to `buffer`. With `outlivesConnection`,
    /// a lost connection leaves the buffer open, for a consumer resumed on the next connection
    /// to fill.
    func consume(queue: String, tag: String, into buffer: HandOffQueue<AMQPDelivery>, outlivesConnection: Bool, noAck: Bool = false, arguments: AMQPFieldTable = [:]) async throws {
        try await connection.addConsumer(tag: tag, buffer: buffer, outlivesConnection: outlivesConnection, on: id)
        try await call(.basicConsume(queue: queue, consumerTag: tag, noLocal: false, noAck: noAck, exclusive: false, noWait: false, arguments: arguments))
    }

    package func ack(_ deliveryTag: UInt64) { connection.settle(.basicAck(deliveryTag: deliveryTag, multiple: false), on: id) }
    func nack(_ deliveryTag: UInt64, requeue: Bool) { connection.settle(.basicNack(deliveryTag: deliveryTag, multiple: false, requeue: requeue), on: id) }
    func reject(_ deliveryTag: UInt64, requeue: Bool) { connection.settle(.basicReject(deliveryTag: deliveryTag, requeue: requeue), on: id) }

    func close() async throws {
        try await call(.channelClose(replyCode: 200, replyText: "bye", classID: 0, methodID: 0))
    }
}

/// One message to publish: where it goes, whether an unroutable one is an error, what it carries.
package struct AMQPPublish: Sendable {
    var exchange: String
    var routingKey: String
    var mandatory: Bool
    var properties: AMQPBasicProperties
    var body: ByteBuffer

    package init(exchange: String = "", routingKey: String, mandatory: Bool = true, properties: AMQPBasicProperties = AMQPBasicProperties(), body: ByteBuffer) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.mandatory = mandatory
        self.properties = properties
        self.body = body
    }
}
