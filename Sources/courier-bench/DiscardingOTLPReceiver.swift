import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A local OTLP/HTTP receiver that reads every export request whole and answers it with an empty
/// `ExportTraceServiceResponse` (a 200 with no body): the traced rows pay for encoding and sending
/// their spans as they would to a collector, and nothing else.
final class DiscardingOTLPReceiver: Sendable {
    private let channel: any Channel
    private let counters: Counters

    /// The endpoint traces are sent to.
    var endpoint: String { "http://127.0.0.1:\(channel.localAddress?.port ?? 0)/v1/traces" }

    /// Export requests answered so far, and their bytes.
    var requests: Int { counters.requests.load(ordering: .relaxed) }
    var bytes: Int { counters.bytes.load(ordering: .relaxed) }

    final class Counters: Sendable {
        let requests = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
    }

    private init(channel: any Channel, counters: Counters) {
        self.channel = channel
        self.counters = counters
    }

    static func start() async throws -> DiscardingOTLPReceiver {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return DiscardingOTLPReceiver(channel: channel, counters: counters)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let counters: Counters

        init(counters: Counters) {
            self.counters = counters
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head:
                break
            case .body(let body):
                counters.bytes.add(body.readableBytes, ordering: .relaxed)
            case .end:
                counters.requests.add(1, ordering: .relaxed)
                var head = HTTPResponseHead(version: .http1_1, status: .ok)
                head.headers.add(name: "content-type", value: "application/x-protobuf")
                head.headers.add(name: "content-length", value: "0")
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
