@_spi(BrokerModule) import Courier
import Logging

/// A channel, pattern or sharded channel subscription on a shared pub/sub connection (the
/// broker's, or its sharded channel's): at most once, nothing to settle.
struct RedisPubSubSubscription: TransportSubscription {
    let source: RedisSource
    let buffer: PushBuffer
    let pubSub: RedisPubSub
    let logger: Logger

    var isPattern: Bool { source.kind == .pattern }

    func next() async throws -> InboundDelivery? {
        guard let pushed = await buffer.next()?.first else { return nil }
        let info = RedisMessageInfo(entryID: nil, pattern: pushed.pattern, path: isPattern ? source.captures(in: pushed.channel) : [:])
        let message = RedisIncoming.message(from: pushed.payload, destination: pushed.channel, info: info, logger: logger)
        return InboundDelivery(messages: [message], settlement: .none)
    }

    func stop() async {
        let (mode, name) = source.pubSub
        await pubSub.unsubscribe(name, mode: mode)
    }
}
