import Courier
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis: pipelined commands (every caller may send at once; replies come back
/// in order), and out-of-band pushes (pub/sub) handed to `onPush`.
///
/// The protocol lives in ``RedisConnectionStateMachine``, driven by ``RedisChannelHandler``:
/// the handshake (HELLO 3 or the RESP2 way, AUTH, SELECT), matching replies to commands,
/// timeouts, and failing what waits when the connection ends. This type only opens the channel
/// and hands commands to it.
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
        try await makeConnection(configuration, eventLoopGroup: eventLoopGroup, onPush: onPush).get()
    }

    /// ``connect(_:eventLoopGroup:onPush:)`` as a future, which any number of callers can wait on:
    /// how a pool shares one connect between the commands that wait for it.
    ///
    /// The handshake may take up to the connect timeout, on top of the TCP (and TLS) connect.
    package static func makeConnection(
        _ configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) -> EventLoopFuture<RedisConnection> {
        let eventLoop = eventLoopGroup.next()
        if let cluster = configuration.cluster {
            // A connection to the cluster as a whole (pub/sub): any node that answers.
            return eventLoop.makeFutureWithTask {
                try await connectToAnyNode(configuration, cluster: cluster, eventLoopGroup: eventLoopGroup, onPush: onPush)
            }
        }
        if let sentinels = configuration.sentinels {
            return eventLoop.makeFutureWithTask {
                try await connectToMaster(configuration, sentinels: sentinels, eventLoopGroup: eventLoopGroup, onPush: onPush)
            }
        }
        let tls: NIOSSLContext?
        do {
            tls = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            return eventLoop.makeFailedFuture(RedisError(.invalidTLSConfiguration, "invalid TLS configuration: \(error)", underlying: error))
        }
        let handshake = RedisConnectionStateMachine<EventLoopPromise<RESPValue>>.Handshake(configuration: configuration)
        let host = configuration.host
        let port = configuration.port
        let timeout = configuration.connectTimeout
        let commandTimeout = configuration.commandTimeout
        // The handshake of each channel the bootstrap tries (happy eyeballs may try several),
        // kept here because a failed handshake removes the handler before the connect's future
        // hands over the channel that won.
        let handshakes = NIOLoopBoundBox.makeBoxSendingValue(
            [ObjectIdentifier: EventLoopFuture<Bool>](),
            as: [ObjectIdentifier: EventLoopFuture<Bool>].self,
            eventLoop: eventLoop
        )
        return ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    // Many tasks sending at once: one write(2) per event-loop tick, not per command.
                    try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
                    let handler = RedisChannelHandler(handshake: handshake, handshakeTimeout: timeout, eventLoop: channel.eventLoop, onPush: onPush)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    handshakes.value[ObjectIdentifier(channel)] = handler.handshakeCompleted
                }
            }
            .connect(host: host, port: port)
            .flatMapErrorThrowing { error in
                var failure = RedisError(.connectionClosed, "cannot connect to \(host):\(port): \(error)", underlying: error)
                // No command went anywhere: what waited for this connection may go to another server.
                failure.commandNotSent = true
                throw failure
            }
            .flatMap { channel in
                guard let handshakeCompleted = handshakes.value[ObjectIdentifier(channel)] else {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(RedisError(.connectionClosed, "the connection to \(host):\(port) was set up without its handler"))
                }
                // A failed handshake has closed the channel already.
                return handshakeCompleted.map { isRESP3 in
                    RedisConnection(channel: channel, isRESP3: isRESP3, commandTimeout: commandTimeout)
                }
            }
    }

    /// The first node of `cluster` that answers.
    private static func connectToAnyNode(
        _ configuration: RedisConfiguration,
        cluster: RedisCluster,
        eventLoopGroup: any EventLoopGroup,
        onPush: (@Sendable (RESPValue) -> Void)?
    ) async throws -> RedisConnection {
        var failures: [String] = []
        for node in cluster.seeds {
            do {
                return try await makeConnection(configuration.direct(to: node.host, port: node.port), eventLoopGroup: eventLoopGroup, onPush: onPush).get()
            } catch {
                failures.append("\(error)")
            }
        }
        throw RedisError(.connectionClosed, "no node of the cluster answered: \(failures.joined(separator: "; "))")
    }

    /// Asks the sentinels for the master, connects to it and checks that it is one: during a
    /// failover a sentinel may still name the old master (restarted as an empty master, or
    /// demoted), which must not take writes meant for the new one.
    private static func connectToMaster(
        _ configuration: RedisConfiguration,
        sentinels: RedisSentinels,
        eventLoopGroup: any EventLoopGroup,
        onPush: (@Sendable (RESPValue) -> Void)?
    ) async throws -> RedisConnection {
        let (host, port) = try await askForMaster(sentinels, configuration: configuration, eventLoopGroup: eventLoopGroup)
        let connection = try await makeConnection(configuration.direct(to: host, port: port), eventLoopGroup: eventLoopGroup, onPush: onPush).get()
        do {
            let role = try await connection.send(RedisCommand("ROLE")).elements?.first?.string
            guard role == "master" else {
                throw RedisError(
                    .connectionClosed,
                    "\(host):\(port), which the sentinels name the master of '\(sentinels.masterName)', is a \(role ?? "server of unknown role") (a failover under way)"
                )
            }
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The master's address, from the first sentinel that answers `SENTINEL get-master-addr-by-name`.
    private static func askForMaster(
        _ sentinels: RedisSentinels,
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup
    ) async throws -> (host: String, port: Int) {
        var failures: [String] = []
        for endpoint in sentinels.endpoints {
            let sentinel = sentinels.configuration(of: endpoint, like: configuration)
            do {
                let connection = try await makeConnection(sentinel, eventLoopGroup: eventLoopGroup).get()
                let reply: RESPValue
                do {
                    reply = try await connection.send(RedisCommand("SENTINEL", ["get-master-addr-by-name", .string(sentinels.masterName)]))
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                guard let address = reply.elements, address.count == 2, let host = address[0].string,
                    let port = address[1].string.flatMap({ Int($0) })
                else {
                    failures.append("\(endpoint) knows no master named '\(sentinels.masterName)'")
                    continue
                }
                return (host, port)
            } catch {
                failures.append("\(endpoint): \(error)")
            }
        }
        throw RedisError(.connectionClosed, "no sentinel named the master of '\(sentinels.masterName)': \(failures.joined(separator: "; "))")
    }

    /// Sends `command` and waits for its reply; an error reply throws ``RedisError`` `.server`,
    /// its ``RedisError/serverCode`` parsed.
    ///
    /// - Parameter timeout: nil for the configured command timeout; `.zero` waits as long as it takes
    ///   (for blocking reads, which end when the connection closes).
    package func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await enqueue(command, timeout: timeout, flush: true).get()
    }

    /// Writes every command before waiting for the first reply, in order, with one flush; returns
    /// the replies in the same order, or throws the first error.
    ///
    /// - Parameter timeout: how long each reply may take; nil for the configured command timeout.
    package func send(pipelined commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        let replies = commands.map { enqueue($0, timeout: timeout, flush: false) }
        channel.flush()
        var values: [RESPValue] = []
        values.reserveCapacity(replies.count)
        for reply in replies {
            do {
                values.append(try await reply.get())
            } catch var error as RedisError where error.commandNotSent && !values.isEmpty {
                // The commands before it were sent (they were answered): the pipeline as a whole
                // did reach Redis, and must not be sent again.
                error.commandNotSent = false
                throw error
            }
        }
        return values
    }

    private func enqueue(_ command: RedisCommand, timeout: Duration?, flush: Bool) -> EventLoopFuture<RESPValue> {
        let limit = timeout ?? commandTimeout
        return Self.enqueue(command, timeout: limit > .zero ? limit : nil, on: channel, flush: flush)
    }

    /// Hands `command` to the channel's ``RedisChannelHandler``; the future completes with its
    /// reply, exactly once. Static so that tests drive an `EmbeddedChannel` the same way.
    ///
    /// - Parameter timeout: how long the reply may take; nil waits as long as it takes.
    static func enqueue(_ command: RedisCommand, timeout: Duration?, on channel: any Channel, flush: Bool) -> EventLoopFuture<RESPValue> {
        var bytes = channel.allocator.buffer(capacity: command.estimatedSize)
        command.encode(into: &bytes)
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        let accepted = channel.eventLoop.makePromise(of: Void.self)
        accepted.futureResult.whenFailure { error in
            // The command never reached the handler (the channel had closed, and its pipeline
            // with it), so nothing else holds the reply promise: this is its only completion.
            var refusal = RedisError(.connectionClosed, "cannot send \(command.name): \(error)", underlying: error)
            refusal.commandNotSent = true
            reply.fail(refusal)
        }
        let outbound = RedisChannelHandler.Command(bytes: bytes, name: command.name, reply: reply, timeout: timeout)
        if flush {
            channel.writeAndFlush(outbound, promise: accepted)
        } else {
            channel.write(outbound, promise: accepted)
        }
        return reply.futureResult
    }

    /// Writes a command whose answers arrive as pushes (SUBSCRIBE and friends).
    package func sendWithoutReply(_ command: RedisCommand) async throws {
        var bytes = channel.allocator.buffer(capacity: command.estimatedSize)
        command.encode(into: &bytes)
        try await channel.writeAndFlush(RedisChannelHandler.Command(bytes: bytes, name: command.name, reply: nil, timeout: nil))
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
