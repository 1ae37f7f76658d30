import Courier
import NIOCore
import NIOPosix

/// One AMQP 0-9-1 connection on SwiftNIO: the handshake, channels, heartbeats and a clean close.
/// The wire is ``AMQPFrame``'s, the lifecycle ``AMQPConnectionStateMachine``'s; this type is the
/// async surface the broker uses.
package final class AMQPConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<AMQPConnectionHandler>
    let tuning: AMQPConnectionStateMachine.Tuning

    private init(channel: any Channel, handler: NIOLoopBound<AMQPConnectionHandler>, tuning: AMQPConnectionStateMachine.Tuning) {
        self.channel = channel
        self.handler = handler
        self.tuning = tuning
    }

    /// Connects to `host:port` and runs the handshake.
    static func connect(
        host: String,
        port: Int,
        configuration: AMQPConnectionStateMachine.Configuration,
        connectTimeout: Duration = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> AMQPConnection {
        let limit = AMQPFrameDecoder.Limit()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(connectTimeout.wholeMilliseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw RabbitError(.connectionClosed, "cannot connect to \(host):\(port): \(error)", underlying: error)
        }
        let handler = try await channel.eventLoop.submit {
            let handler = AMQPConnectionHandler(configuration: configuration, eventLoop: channel.eventLoop) { limit.maximumFrameSize = $0 }
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AMQPFrameDecoder(limit: limit)))
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.get()
        let tuning = try await channel.eventLoop.flatSubmit { handler.value.connected.futureResult }.get()
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

    func publish(exchange: String, routingKey: String, mandatory: Bool, properties: AMQPBasicProperties, body: ByteBuffer, on id: UInt16) async throws {
        let handler = self.handler
        try await channel.eventLoop.flatSubmit {
            handler.value.publish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, body: body, on: id)
        }.get()
    }

    func settle(_ method: AMQPMethod, on id: UInt16) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.settle(method, on: id) }
    }

    func addConsumer(tag: String, buffer: AsyncBuffer<AMQPDelivery>, on id: UInt16) async throws {
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.addConsumer(tag: tag, buffer: buffer, on: id) }.get()
    }

    /// Closes cleanly: `connection.close`, `close-ok`, the socket.
    package func close() async {
        let handler = self.handler
        _ = try? await channel.eventLoop.flatSubmit { handler.value.close() }.get()
    }

    /// Completes when the connection is gone, for whatever reason.
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
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
        try await connection.publish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, body: body, on: id)
    }

    /// Starts a consumer of `queue`; its deliveries arrive in the returned buffer.
    package func consume(queue: String, tag: String, noAck: Bool = false, arguments: AMQPFieldTable = [:]) async throws -> AsyncBuffer<AMQPDelivery> {
        let buffer = AsyncBuffer<AMQPDelivery>()
        try await connection.addConsumer(tag: tag, buffer: buffer, on: id)
        try await call(.basicConsume(queue: queue, consumerTag: tag, noLocal: false, noAck: noAck, exclusive: false, noWait: false, arguments: arguments))
        return buffer
    }

    package func ack(_ deliveryTag: UInt64) { connection.settle(.basicAck(deliveryTag: deliveryTag, multiple: false), on: id) }
    func nack(_ deliveryTag: UInt64, requeue: Bool) { connection.settle(.basicNack(deliveryTag: deliveryTag, multiple: false, requeue: requeue), on: id) }
    func reject(_ deliveryTag: UInt64, requeue: Bool) { connection.settle(.basicReject(deliveryTag: deliveryTag, requeue: requeue), on: id) }

    func close() async throws {
        try await call(.channelClose(replyCode: 200, replyText: "bye", classID: 0, methodID: 0))
    }
}
