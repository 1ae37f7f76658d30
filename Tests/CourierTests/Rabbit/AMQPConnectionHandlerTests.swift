@testable import CourierRabbit
import NIOCore
import NIOEmbedded
import Testing

/// The connection handler on an `EmbeddedChannel`, frame by frame: what goes out for each frame
/// that comes in, held publishes while blocked, heartbeats on a virtual clock, malformed frames.
@Suite("AMQP connection handler, frame by frame")
struct AMQPConnectionHandlerTests {
    typealias Frame = AMQPConnectionStateMachineTests

    /// A channel whose handler has been through the handshake with the server proposing `heartbeat`.
    final class Connection {
        let channel = EmbeddedChannel()
        let handler: AMQPConnectionHandler
        var frameMax = 0

        init(heartbeat: UInt16 = 0) throws {
            let limit = AMQPFrameDecoder.Limit()
            handler = AMQPConnectionHandler(configuration: Frame.configuration, eventLoop: channel.embeddedEventLoop) { limit.maximumFrameSize = $0 }
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AMQPFrameDecoder(limit: limit)))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5672)).wait()
            let header = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(Array(header.readableBytesView) == AMQPFrame.protocolHeader)
            try receive(Frame.start())
            #expect(try sent().first.map { if case .method(.connectionStartOk) = $0.payload { true } else { false } } == true)
            try receive(Frame.frame(.connectionTune(channelMax: 16, frameMax: 4096, heartbeat: heartbeat)))
            let tuned = try sent()
            #expect(tuned.count == 2)
            try receive(Frame.frame(.connectionOpenOk))
            #expect(try handler.connected.futureResult.wait().frameMax == 4096)
        }

        func receive(_ frames: AMQPFrame...) throws {
            var buffer = ByteBuffer()
            for frame in frames { try frame.encode(into: &buffer) }
            try channel.writeInbound(buffer)
        }

        /// Every frame written since the last call.
        func sent() throws -> [AMQPFrame] {
            var frames: [AMQPFrame] = []
            var decoder = AMQPFrameDecoder()
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
            }
            return frames
        }

        /// Opens channel 1 with confirms selected.
        func openConfirmingChannel() throws -> UInt16 {
            let opened = handler.openChannel()
            #expect(try sent() == [Frame.frame(.channelOpen, channel: 1)])
            try receive(Frame.frame(.channelOpenOk, channel: 1))
            let id = try opened.wait()
            let selected = handler.call(.confirmSelect(noWait: false), on: id)
            #expect(try sent() == [Frame.frame(.confirmSelect(noWait: false), channel: id)])
            try receive(Frame.frame(.confirmSelectOk, channel: id))
            _ = try selected.wait()
            return id
        }
    }

    @Test("a publish is method, header and bodies split at frame-max; it completes on the server's ack, fails on its nack or a return")
    func publishAndConfirms() throws {
        let connection = try Connection()
        let id = try connection.openConfirmingChannel()
        let body = ByteBuffer(repeating: 7, count: 10_000)
        let first = connection.handler.publish(exchange: "", routingKey: "q", mandatory: true, properties: AMQPBasicProperties(), body: body, on: id)
        let frames = try connection.sent()
        // 4096 less 8 bytes of framing per body frame: 3 body frames for 10,000 bytes.
        #expect(frames.count == 5)
        #expect(frames.dropFirst(2).allSatisfy { if case .body(let chunk) = $0.payload { chunk.readableBytes <= 4088 } else { false } })
        try connection.receive(Frame.frame(.basicAck(deliveryTag: 1, multiple: false), channel: id))
        try first.wait()

        let nacked = connection.handler.publish(exchange: "", routingKey: "q", mandatory: true, properties: AMQPBasicProperties(), body: ByteBuffer(string: "x"), on: id)
        _ = try connection.sent()
        try connection.receive(Frame.frame(.basicNack(deliveryTag: 2, multiple: false, requeue: false), channel: id))
        #expect(throws: RabbitError.self) { try nacked.wait() }

        var properties = AMQPBasicProperties()
        properties.messageID = "m-3"
        let returned = connection.handler.publish(exchange: "ex", routingKey: "nowhere", mandatory: true, properties: properties, body: ByteBuffer(string: "y"), on: id)
        _ = try connection.sent()
        try connection.receive(
            Frame.frame(.basicReturn(replyCode: 312, replyText: "NO_ROUTE", exchange: "ex", routingKey: "nowhere"), channel: id),
            AMQPFrame(channel: id, payload: .header(classID: 60, bodySize: 1, properties: properties)),
            AMQPFrame(channel: id, payload: .body(ByteBuffer(string: "y"))),
            Frame.frame(.basicAck(deliveryTag: 3, multiple: false), channel: id)
        )
        do {
            try returned.wait()
            Issue.record("a returned publish succeeded")
        } catch let error as RabbitError {
            #expect(error.code == .publishRefused)
            #expect(error.message.contains("312 NO_ROUTE"))
        }
    }

    @Test("connection.blocked holds publishes, in order, until connection.unblocked")
    func blocked() throws {
        let connection = try Connection()
        let id = try connection.openConfirmingChannel()
        try connection.receive(Frame.frame(.connectionBlocked(reason: "low on memory")))
        let first = connection.handler.publish(exchange: "", routingKey: "a", mandatory: false, properties: AMQPBasicProperties(), body: ByteBuffer(string: "1"), on: id)
        let second = connection.handler.publish(exchange: "", routingKey: "b", mandatory: false, properties: AMQPBasicProperties(), body: ByteBuffer(string: "2"), on: id)
        #expect(try connection.sent().isEmpty)
        try connection.receive(Frame.frame(.connectionUnblocked))
        let routed = try connection.sent().compactMap { frame -> String? in
            if case .method(.basicPublish(_, let key, _, _)) = frame.payload { key } else { nil }
        }
        #expect(routed == ["a", "b"])
        try connection.receive(Frame.frame(.basicAck(deliveryTag: 2, multiple: true), channel: id))
        try first.wait()
        try second.wait()
    }

    @Test("heartbeats go out on a quiet connection; a silent server is a heartbeat timeout that fails what waits")
    func heartbeatTimeout() throws {
        let connection = try Connection(heartbeat: 2)
        let id = try connection.openConfirmingChannel()
        let waiting = connection.handler.call(.queueDeclare(queue: "q", passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: [:]), on: id)
        _ = try connection.sent()
        // Ticks every half interval: a heartbeat goes out when nothing else did since the last.
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(try connection.sent().contains(AMQPFrame(channel: 0, payload: .heartbeat)))
        #expect(connection.channel.isActive)
        // Nothing from the server for two intervals (and then some): closed.
        var seconds = 2
        while connection.channel.isActive, seconds < 10 {
            connection.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            seconds += 1
        }
        #expect(!connection.channel.isActive)
        #expect(seconds <= 6)
        do {
            _ = try waiting.wait()
            Issue.record("a call outlived its connection")
        } catch let error as RabbitError {
            #expect(error.code == .heartbeatTimeout)
        }
        #expect(connection.handler.closeError?.code == .heartbeatTimeout)
    }

    @Test("a malformed frame closes the connection with 501 FRAME_ERROR and a protocol error; what waits fails")
    func malformedFrame() throws {
        let connection = try Connection()
        let id = try connection.openConfirmingChannel()
        let waiting = connection.handler.call(.basicQos(prefetchSize: 0, prefetchCount: 1, global: false), on: id)
        _ = try connection.sent()
        // A method frame whose end octet is not 0xCE.
        var garbage = ByteBuffer()
        garbage.writeBytes([1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 11, 0x00])
        // The decoder's error reaches the handler, which answers it; nothing is thrown at the socket.
        try connection.channel.writeInbound(garbage)
        let close = try connection.sent()
        if case .method(.connectionClose(let code, _, _, _)) = close.first?.payload {
            #expect(code == 501)
        } else {
            Issue.record("no connection.close: \(close)")
        }
        connection.channel.embeddedEventLoop.run()
        #expect(!connection.channel.isActive)
        #expect(throws: RabbitError.self) { _ = try waiting.wait() }
        #expect(connection.handler.closeError?.code == .protocolError)
    }

    @Test("a channel the server closes fails only that channel's call, with the server's code and text")
    func channelClose() throws {
        let connection = try Connection()
        let id = try connection.openConfirmingChannel()
        let declare = connection.handler.call(.queueDeclare(queue: "q", passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: [:]), on: id)
        _ = try connection.sent()
        try connection.receive(Frame.frame(.channelClose(replyCode: 404, replyText: "NOT_FOUND - no queue 'q'", classID: 50, methodID: 10), channel: id))
        #expect(try connection.sent() == [Frame.frame(.channelCloseOk, channel: id)])
        do {
            _ = try declare.wait()
            Issue.record("the declare succeeded")
        } catch let error as RabbitError {
            #expect(error.replyCode == 404)
            #expect(error.message.contains("NOT_FOUND - no queue 'q'"))
        }
        #expect(connection.channel.isActive)
        // The connection goes on: another channel opens.
        let reopened = connection.handler.openChannel()
        #expect(try connection.sent().count == 1)
        try connection.receive(Frame.frame(.channelOpenOk, channel: 2))
        #expect(try reopened.wait() == 2)
    }
}
