@testable import CourierRabbit
import Courier
import NIOCore
import NIOPosix
import Testing

/// The transport against a fake AMQP server on a real socket: one that goes through the handshake
/// and then misbehaves — sends bytes that are not a frame, or falls silent.
@Suite("RabbitMQ transport against a misbehaving server")
struct AMQPFakeServerTests {
    enum Misbehaviour: Sendable {
        /// Sends a frame whose end octet is wrong.
        case malformedFrame
        /// Answers nothing more after the handshake, heartbeats included.
        case silence
    }

    /// Accepts connections, plays the server's side of the handshake (proposing a heartbeat of 3 s: shorter, a handshake on a machine
    /// loaded by the whole suite running in parallel could outlast two intervals)
    /// and of `channel.open` / `confirm.select`, then misbehaves as told.
    final class FakeServer: Sendable {
        let channel: any Channel

        init(_ misbehaviour: Misbehaviour) async throws {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(FakeServerHandler(misbehaviour))
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
        }

        var port: Int { channel.localAddress!.port! }

        func close() async { try? await channel.close() }
    }

    final class FakeServerHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let misbehaviour: Misbehaviour
        var received = ByteBuffer()
        var sawHeader = false
        var decoder = AMQPFrameDecoder()

        init(_ misbehaviour: Misbehaviour) { self.misbehaviour = misbehaviour }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
            if !sawHeader {
                guard received.readableBytes >= 8 else { return }
                received.moveReaderIndex(forwardBy: 8)
                sawHeader = true
                send(.connectionStart(versionMajor: 0, versionMinor: 9, serverProperties: [:], mechanisms: "PLAIN", locales: "en_US"), context: context)
            }
            while let frame = try? decoder.decode(buffer: &received) {
                guard case .method(let method) = frame.payload else { continue }
                switch method {
                case .connectionStartOk:
                    send(.connectionTune(channelMax: 16, frameMax: 131_072, heartbeat: 3), context: context)
                case .connectionOpen:
                    send(.connectionOpenOk, context: context)
                case .channelOpen:
                    send(.channelOpenOk, channel: frame.channel, context: context)
                case .confirmSelect:
                    send(.confirmSelectOk, channel: frame.channel, context: context)
                    misbehave(context: context)
                default:
                    break
                }
            }
        }

        private func misbehave(context: ChannelHandlerContext) {
            switch misbehaviour {
            case .malformedFrame:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 50, 0x00])), promise: nil)
            case .silence:
                break
            }
        }

        private func send(_ method: AMQPMethod, channel: UInt16 = 0, context: ChannelHandlerContext) {
            var buffer = ByteBuffer()
            try? AMQPFrame(channel: channel, payload: .method(method)).encode(into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    static func transport(port: Int) -> RabbitTransport {
        var configuration = RabbitConfiguration(host: "127.0.0.1", port: port)
        configuration.heartbeat = .seconds(3)
        configuration.reconnect = nil
        return RabbitTransport(configuration: configuration)
    }

    @Test("a malformed frame from the server ends the connection with a protocol error; the broker stops with it")
    func malformedFrame() async throws {
        let server = try await FakeServer(.malformedFrame)
        let transport = Self.transport(port: server.port)
        try await transport.connect()
        do {
            try await transport.run()
            Issue.record("run() went on after a malformed frame")
        } catch let error as RabbitError {
            #expect(error.code == .protocolError)
        }
        await transport.close()
        await server.close()
    }

    @Test("a server that falls silent is found out by the heartbeat within two intervals")
    func silentServer() async throws {
        let server = try await FakeServer(.silence)
        let transport = Self.transport(port: server.port)
        try await transport.connect()
        let started = ContinuousClock.now
        do {
            try await transport.run()
            Issue.record("run() went on with a silent server")
        } catch let error as RabbitError {
            #expect(error.code == .heartbeatTimeout)
        }
        #expect(ContinuousClock.now - started < .seconds(15), "a liveness bound: two intervals are 6 s")
        await transport.close()
        await server.close()
    }
}
