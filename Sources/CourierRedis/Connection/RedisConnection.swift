import Courier
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis: pipelined commands (every caller may send at once; replies come back
/// in order), and out-of-band pushes (pub/sub) handed to `onPush`.
package final class RedisConnection: Sendable {
    package let channel: any Channel
    /// Whether the server speaks RESP3 on this connection.
    package let isRESP3: Bool
    private let commandTimeout: Duration

    private init(channel: any Channel, isRESP3: Bool, commandTimeout: Duration) {
        self.channel = channel
        self.isRESP3 = isRESP3
        self.commandTimeout = commandTimeout
    }

    /// Connects, says HELLO 3 (falling back to RESP2 where the server does not know it),
    /// authenticates and selects the database.
    package static func connect(
        _ configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let channel: any Channel
        let tls: NIOSSLContext?
        do {
            tls = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw RedisError(.connectionClosed, "invalid TLS configuration: \(error)")
        }
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.components.seconds) * 1_000_000_000 + configuration.connectTimeout.components.attoseconds / 1_000_000_000))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            let isAddress = configuration.host.contains(":") || configuration.host.allSatisfy { $0.isNumber || $0 == "." }
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : configuration.host)
                            )
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(onPush: onPush))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisError(.connectionClosed, "cannot connect to \(configuration.host):\(configuration.port): \(error)", underlying: error)
        }
        var connection = RedisConnection(channel: channel, isRESP3: true, commandTimeout: configuration.commandTimeout)
        do {
            var hello: [RedisCommand.Argument] = ["3"]
            if let password = configuration.password {
                hello += ["AUTH", .string(configuration.username ?? "default"), .string(password)]
            }
            do {
                guard configuration.prefersRESP3 else { throw RedisError(.server, "RESP2 asked for") }
                _ = try await connection.send(RedisCommand("HELLO", hello))
            } catch let error as RedisError where error.code == .server && !error.message.contains("WRONGPASS") && !error.message.contains("NOAUTH") {
                // A server without RESP3, or RESP2 asked for: authenticate the RESP2 way.
                connection = RedisConnection(channel: channel, isRESP3: false, commandTimeout: configuration.commandTimeout)
                if let password = configuration.password {
                    let arguments: [RedisCommand.Argument] = configuration.username.map { [.string($0), .string(password)] } ?? [.string(password)]
                    _ = try await connection.send(RedisCommand("AUTH", arguments))
                }
            }
            if configuration.database != 0 {
                _ = try await connection.send(RedisCommand("SELECT", [.integer(configuration.database)]))
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// Sends `command` and waits for its reply; an error reply throws ``RedisError`` `.server`.
    ///
    /// - Parameter timeout: nil for the configured command timeout; `.zero` waits as long as it takes
    ///   (for blocking reads, which end when the connection closes).
    package func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        var buffer = channel.allocator.buffer(capacity: command.estimatedSize)
        command.encode(into: &buffer)
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            // Never reached the handler (the channel had closed): nothing else will answer.
            promise.fail(RedisError(.connectionClosed, "cannot send \(command.name): \(error)", underlying: error))
        }
        channel.writeAndFlush(RedisCommandHandler.Request(command: buffer, reply: promise), promise: written)
        let limit = timeout ?? commandTimeout
        if limit > .zero {
            let nanoseconds = Int64(limit.components.seconds) * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                promise.fail(RedisError(.timeout, "no reply to \(command.name) within \(limit)"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        let reply = try await promise.futureResult.get()
        if case .error(let message) = reply {
            throw RedisError(.server, message)
        }
        return reply
    }

    /// Writes `commands` in order with one flush, then waits for their replies; an error reply
    /// throws ``RedisError`` `.server` (after every reply arrived, so the pipeline stays in step).
    package func sendPipelined(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        for (command, promise) in zip(commands, promises) {
            var buffer = channel.allocator.buffer(capacity: command.estimatedSize)
            command.encode(into: &buffer)
            let written = channel.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenFailure { error in
                promise.fail(RedisError(.connectionClosed, "cannot send \(command.name): \(error)", underlying: error))
            }
            // Writes from one task reach the event loop in the order they were made.
            channel.write(RedisCommandHandler.Request(command: buffer, reply: promise), promise: written)
        }
        channel.flush()
        if commandTimeout > .zero {
            let limit = commandTimeout
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(limit.wholeNanoseconds)) {
                for promise in promises { promise.fail(RedisError(.timeout, "no reply to a pipeline of \(commands.count) within \(limit)")) }
            }
            EventLoopFuture.andAllComplete(promises.map(\.futureResult), on: channel.eventLoop).whenComplete { _ in timer.cancel() }
        }
        var replies: [RESPValue] = []
        var serverError: RedisError?
        for promise in promises {
            let reply = try await promise.futureResult.get()
            if case .error(let message) = reply, serverError == nil { serverError = RedisError(.server, message) }
            replies.append(reply)
        }
        if let serverError { throw serverError }
        return replies
    }

    /// Writes a command whose answers arrive as pushes (SUBSCRIBE and friends).
    package func sendWithoutReply(_ command: RedisCommand) async throws {
        var buffer = channel.allocator.buffer(capacity: command.estimatedSize)
        command.encode(into: &buffer)
        try await channel.writeAndFlush(RedisCommandHandler.Request(command: buffer, reply: nil))
    }

    /// Completes when the connection has closed, for whatever reason.
    package var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    package var isActive: Bool { channel.isActive }

    package func close() async {
        try? await channel.close()
    }

    /// Stops or resumes reading from the socket: backpressure for pushes.
    package func setReading(_ reading: Bool) {
        channel.setOption(.autoRead, value: reading).whenFailure { _ in }
    }
}

/// Matches replies to requests in order; hands pushes (and, in RESP2, unrequested arrays: a
/// subscribed connection's messages) to `onPush`.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        var command: ByteBuffer
        var reply: EventLoopPromise<RESPValue>?
    }

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    private let onPush: (@Sendable (RESPValue) -> Void)?

    init(onPush: (@Sendable (RESPValue) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let reply = request.reply { waiting.append(reply) }
        context.write(wrapOutboundOut(request.command), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push = value {
            onPush?(value)
        } else if let reply = waiting.popFirst() {
            reply.succeed(value)
        } else {
            onPush?(value)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: RedisError
        if let error = error as? RESPProtocolError {
            failure = RedisError(.protocolViolation, "closing the connection: \(error.description)")
        } else if error is ByteToMessageDecoderError {
            failure = RedisError(.protocolViolation, "closing the connection after a malformed reply")
        } else {
            failure = RedisError(.connectionClosed, "connection error: \(error)")
        }
        failAll(failure)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        while let reply = waiting.popFirst() { reply.fail(error) }
    }
}
