@testable import CourierRabbit
import NIOCore
import Testing

/// The AMQP connection's lifecycle, event by event: what each frame from the server makes the
/// client send, and how closes, heartbeats and protocol violations end.
@Suite("AMQP connection state machine")
struct AMQPConnectionStateMachineTests {
    static let configuration = AMQPConnectionStateMachine.Configuration(username: "guest", password: "secret", virtualHost: "/orders", heartbeat: 30)

    static func frame(_ method: AMQPMethod, channel: UInt16 = 0) -> AMQPFrame {
        AMQPFrame(channel: channel, payload: .method(method))
    }

    static func start(_ mechanisms: String = "AMQPLAIN PLAIN") -> AMQPFrame {
        frame(.connectionStart(versionMajor: 0, versionMinor: 9, serverProperties: ["product": .string("RabbitMQ")], mechanisms: mechanisms, locales: "en_US"))
    }

    /// A machine through the handshake, with the server proposing `heartbeat`.
    static func opened(heartbeat: UInt16 = 60) -> AMQPConnectionStateMachine {
        var machine = AMQPConnectionStateMachine(configuration: configuration)
        _ = machine.connected()
        _ = machine.frameReceived(start())
        _ = machine.frameReceived(frame(.connectionTune(channelMax: 2047, frameMax: 131_072, heartbeat: heartbeat)))
        _ = machine.frameReceived(frame(.connectionOpenOk))
        return machine
    }

    @Test("handshake: header, start-ok with a PLAIN response, tune-ok with the lower values, open, open-ok")
    func handshake() {
        var machine = AMQPConnectionStateMachine(configuration: Self.configuration)
        guard case .sendProtocolHeader = machine.connected() else { Issue.record("no protocol header"); return }
        guard case .send(let startOk) = machine.frameReceived(Self.start()) else { Issue.record("no start-ok"); return }
        #expect(startOk.count == 1)
        if case .method(.connectionStartOk(let properties, let mechanism, let response, _)) = startOk[0].payload {
            #expect(mechanism == "PLAIN")
            #expect(response == [0] + Array("guest".utf8) + [0] + Array("secret".utf8))
            #expect(properties["product"]?.text == "Courier")
        } else {
            Issue.record("expected start-ok, got \(startOk[0])")
        }
        guard case .send(let tuneAndOpen) = machine.frameReceived(Self.frame(.connectionTune(channelMax: 0, frameMax: 65_536, heartbeat: 60))) else {
            Issue.record("no tune-ok")
            return
        }
        #expect(tuneAndOpen == [
            Self.frame(.connectionTuneOk(channelMax: 2047, frameMax: 65_536, heartbeat: 30)),
            Self.frame(.connectionOpen(virtualHost: "/orders")),
        ])
        guard case .connected(let tuning) = machine.frameReceived(Self.frame(.connectionOpenOk)) else { Issue.record("not connected"); return }
        #expect(tuning == .init(channelMax: 2047, frameMax: 65_536, heartbeat: 30))
        #expect(machine.isOpen)
        // Channels' frames go through to the channel layer once open.
        let deliver = Self.frame(.basicConsumeOk(consumerTag: "c"), channel: 1)
        guard case .forward(let forwarded) = machine.frameReceived(deliver) else { Issue.record("not forwarded"); return }
        #expect(forwarded == deliver)
    }

    @Test("a refused login is an authentication error with the server's text; no PLAIN is a protocol error")
    func loginRefused() {
        var machine = AMQPConnectionStateMachine(configuration: Self.configuration)
        _ = machine.connected()
        _ = machine.frameReceived(Self.start())
        let refused = Self.frame(.connectionClose(replyCode: 403, replyText: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", classID: 10, methodID: 11))
        guard case .closeSocket(let frames, let error) = machine.frameReceived(refused) else { Issue.record("did not close"); return }
        #expect(frames == [Self.frame(.connectionCloseOk)])
        #expect(error?.code == .authenticationFailed)
        #expect(error?.replyCode == 403)
        #expect(error?.message.contains("ACCESS_REFUSED") == true)

        var noPlain = AMQPConnectionStateMachine(configuration: Self.configuration)
        _ = noPlain.connected()
        guard case .closeSocket(_, let protocolError) = noPlain.frameReceived(Self.start("EXTERNAL")) else { Issue.record("did not close"); return }
        #expect(protocolError?.code == .protocolError)
    }

    @Test("the server closing an open connection: close-ok, then the socket, with the reply code")
    func serverCloses() {
        var machine = Self.opened()
        let forced = Self.frame(.connectionClose(replyCode: 320, replyText: "CONNECTION_FORCED - shutdown", classID: 0, methodID: 0))
        guard case .closeSocket(let frames, let error) = machine.frameReceived(forced) else { Issue.record("did not close"); return }
        #expect(frames == [Self.frame(.connectionCloseOk)])
        #expect(error?.code == .connectionClosed && error?.replyCode == 320)

        var other = Self.opened()
        let precondition = Self.frame(.connectionClose(replyCode: 530, replyText: "NOT_ALLOWED - vhost gone", classID: 10, methodID: 40))
        guard case .closeSocket(_, let closed) = other.frameReceived(precondition) else { Issue.record("did not close"); return }
        #expect(closed?.code == .closedByServer && closed?.message.contains("NOT_ALLOWED") == true)
    }

    @Test("our close: connection.close, then the socket once close-ok came, no error")
    func clientCloses() {
        var machine = Self.opened()
        guard case .send(let frames) = machine.closeRequested() else { Issue.record("no close"); return }
        #expect(frames.count == 1)
        guard case .none = machine.frameReceived(Self.frame(.basicDeliver(consumerTag: "c", deliveryTag: 1, redelivered: false, exchange: "", routingKey: "q"), channel: 1)) else {
            Issue.record("frames after our close are dropped")
            return
        }
        guard case .closeSocket(let after, let error) = machine.frameReceived(Self.frame(.connectionCloseOk)) else { Issue.record("no socket close"); return }
        #expect(after.isEmpty && error == nil)
        #expect(machine.socketClosed() == nil)
    }

    @Test("heartbeats: one goes out when nothing else did; two silent intervals close the connection")
    func heartbeats() {
        var machine = Self.opened(heartbeat: 10)
        guard case .send(let first) = machine.heartbeatTick() else { Issue.record("no heartbeat"); return }
        #expect(first == [AMQPFrame(channel: 0, payload: .heartbeat)])
        machine.frameSent()
        guard case .none = machine.heartbeatTick() else { Issue.record("a heartbeat despite traffic"); return }
        _ = machine.frameReceived(AMQPFrame(channel: 0, payload: .heartbeat))
        _ = machine.heartbeatTick()
        _ = machine.heartbeatTick()
        _ = machine.heartbeatTick()
        guard case .closeSocket(_, let error) = machine.heartbeatTick() else { Issue.record("no timeout"); return }
        #expect(error?.code == .heartbeatTimeout)
    }

    @Test("blocked and unblocked are reported; an unexpected method or malformed frame is a protocol error")
    func blockedAndViolations() {
        var machine = Self.opened()
        guard case .blocked(let reason) = machine.frameReceived(Self.frame(.connectionBlocked(reason: "low on memory"))) else { Issue.record("not blocked"); return }
        #expect(reason == "low on memory")
        guard case .unblocked = machine.frameReceived(Self.frame(.connectionUnblocked)) else { Issue.record("not unblocked"); return }
        guard case .send(let close) = machine.frameReceived(Self.frame(.connectionTune(channelMax: 1, frameMax: 4096, heartbeat: 0))) else {
            Issue.record("no close on a violation")
            return
        }
        if case .method(.connectionClose(let code, _, _, _)) = close.first?.payload { #expect(code == 505) }

        var malformed = Self.opened()
        guard case .closeSocket(let frames, let error) = malformed.decodingFailed(.invalid("missing frame-end octet")) else { Issue.record("did not close"); return }
        #expect(error?.code == .protocolError)
        if case .method(.connectionClose(let code, _, _, _)) = frames.first?.payload { #expect(code == 501) }

        var early = AMQPConnectionStateMachine(configuration: Self.configuration)
        _ = early.connected()
        guard case .closeSocket(_, let earlyError) = early.frameReceived(Self.frame(.channelOpenOk, channel: 1)) else { Issue.record("did not close"); return }
        #expect(earlyError?.code == .protocolError)
    }
}
