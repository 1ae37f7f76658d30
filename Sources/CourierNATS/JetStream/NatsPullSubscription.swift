import Courier
import Foundation
import Logging
import NIOCore
import Synchronization

/// A JetStream pull consumer: the subscriber asks for up to `batchSize` messages only when it
/// has handed out what it got, so nothing piles up on the client side.
final class NatsPullSubscription: TransportSubscription {
    private struct State {
        /// Messages asked for and not yet received (or ended by a status message).
        var outstanding = 0
        var stopped = false
    }

    private let client: NatsClient
    private let inbound: NatsInbound
    private let incoming: NatsIncoming
    private let batch: BatchOptions?
    private let inbox: String
    private let pullSubject: String
    private let batchSize: Int
    private let expires: Duration
    private let handle = Mutex<NatsSubscriptionHandle?>(nil)
    private let state = Mutex(State())
    private let logger: Logger

    init(
        client: NatsClient,
        stream: String,
        consumer: String,
        batchSize: Int,
        expires: Duration,
        incoming: NatsIncoming,
        batch: BatchOptions?,
        logger: Logger
    ) {
        self.client = client
        self.incoming = incoming
        self.batch = batch
        self.batchSize = max(batchSize, batch?.maxMessages ?? 1)
        self.expires = expires
        self.logger = logger
        self.inbox = "_INBOX." + MessageIdentifier.make().replacingOccurrences(of: "-", with: "")
        self.pullSubject = "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(consumer)"
        // One fetch's messages and the status that ends it always fit.
        self.inbound = NatsInbound(limits: NatsConfiguration.PendingLimits(messages: self.batchSize + 2, bytes: Int(Int32.max)))
    }

    /// The status of the marker that ends a pull the server forgot (it restarted).
    private static let forgottenPull = 499

    func start() throws {
        let subscription = try client.subscribe(subject: inbox, queue: nil, inbound: inbound, label: pullSubject)
        handle.withLock { $0 = subscription }
        // A pull open on a server that went away never ends by itself: end it here, so the next
        // call asks the server the connection now has.
        let inbound = self.inbound
        let inbox = self.inbox
        client.addReconnectListener(self) {
            _ = inbound.offer(NatsRawMessage(subject: inbox, headers: [:], status: Self.forgottenPull, body: ByteBuffer()))
        }
    }

    func next() async throws -> InboundDelivery? {
        while true {
            try pullIfIdle()
            guard let raw = await nextOfPull() else { return nil }
            if let status = raw.status, raw.body.readableBytes == 0 || raw.reply == nil {
                // 404 no messages, 408 request expired, 409 consumer changed: this pull is over.
                if status != 100 { state.withLock { $0.outstanding = 0 } }
                if status == 503 {
                    // JetStream is not up (yet, after a server restart): ask again shortly.
                    try await Task.sleep(for: .milliseconds(250))
                }
                continue
            }
            var raws = [raw]
            state.withLock { $0.outstanding = max(0, $0.outstanding - 1) }
            if let batch, batch.maxMessages > 1 {
                // A batch is what one pull brings: wait until it is complete or the server ends it.
                while raws.count < batch.maxMessages, state.withLock({ $0.outstanding > 0 }), let more = await nextOfPull() {
                    if more.status != nil, more.reply == nil {
                        state.withLock { $0.outstanding = 0 }
                    } else {
                        raws.append(more)
                        state.withLock { $0.outstanding = max(0, $0.outstanding - 1) }
                    }
                }
            }
            return InboundDelivery.combining(raws.map(incoming.delivery))
        }
    }

    /// The next message of the open pull. A pull the server holding it never ends (it was the
    /// consumer's leader and died: no reconnect tells this client, whose own server lives) is
    /// given up once nothing came for `expires` and as long again (the server ends every pull
    /// with a status by `expires`): the next pull goes to the consumer's new leader.
    private func nextOfPull() async -> NatsRawMessage? {
        switch await inbound.next(timeout: expires + max(expires, .seconds(1))) {
        case .message(let message):
            return message
        case .finished:
            return nil
        case .timedOut:
            let abandoned = state.withLock { state -> Int in
                defer { state.outstanding = 0 }
                return state.outstanding
            }
            if abandoned > 0 {
                logger.warning(
                    "JetStream pull unanswered past its expiry (its server may have gone); asking again",
                    metadata: ["courier.nats.pull": "\(pullSubject)", "courier.nats.outstanding": "\(abandoned)"]
                )
            }
            // As a pull the server ended: the caller asks again (a batch in progress ends here).
            return NatsRawMessage(subject: inbox, headers: [:], status: Self.forgottenPull, body: ByteBuffer())
        }
    }

    /// Asks for the next batch when nothing is asked for any more.
    private func pullIfIdle() throws {
        let batchSize = self.batchSize
        let shouldPull = state.withLock { state -> Bool in
            guard !state.stopped, state.outstanding == 0 else { return false }
            state.outstanding = batchSize
            return true
        }
        guard shouldPull else { return }
        let request = try JSONEncoder().encode(PullRequest(batch: batchSize, expires: expires.wholeNanoseconds))
        try client.publish(subject: pullSubject, reply: inbox, headers: [:], body: ByteBuffer(bytes: request))
    }

    /// Stops asking; what was received is still handed out. A pull still open on the server
    /// ends by itself (`expires`); what it would deliver is redelivered after the ack wait.
    func stop() async {
        state.withLock { $0.stopped = true }
        client.removeReconnectListener(self)
        if handle.withLock({ $0 })?.drain() == false { inbound.finish() }
    }
}
