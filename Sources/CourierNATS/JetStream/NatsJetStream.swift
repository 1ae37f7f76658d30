@_spi(BrokerModule) import Courier
import Foundation
import Logging
import NIOCore
import Synchronization

/// JetStream over the core connection: API calls and PubAcks are requests whose replies come
/// back on one shared inbox (`_INBOX.<id>.<token>`), so none of them blocks a thread.
final class NatsJetStream: Sendable {
    private let client: NatsClient
    private let inboxPrefix = "_INBOX." + MessageIdentifier.make().replacingOccurrences(of: "-", with: "") + "."
    private let state = Mutex<(subscription: NatsSubscriptionHandle?, nextToken: UInt64)>((nil, 0))
    /// The answers, by the token at the end of their reply subject.
    private let replies = CorrelatedReplies<UInt64, NatsRawMessage>()
    private let timeout: Duration

    init(client: NatsClient) {
        self.client = client
        self.timeout = client.configuration.jetStreamTimeout
    }

    /// Sends `body` to `subject` and waits for the one reply.
    func request(_ subject: String, body: ByteBuffer, headers: MessageHeaders = [:]) async throws -> NatsRawMessage {
        try await requests(subject, [(headers, body)])[0]
    }

    /// Sends every message to `subject`, in order, then waits for all their replies together:
    /// a batch keeps its order in the stream and costs one round trip of waiting.
    ///
    /// While nats.c reconnects, the requests wait for the connection first; `deadline` bounds
    /// that wait and the replies together (by default the JetStream timeout from now), and each
    /// reply comes within the JetStream timeout of its request.
    func requests(
        _ subject: String,
        _ messages: [(headers: MessageHeaders, body: ByteBuffer)],
        deadline overall: ContinuousClock.Instant? = nil
    ) async throws -> [NatsRawMessage] {
        let overall = overall ?? ContinuousClock.now + timeout
        let bound = overall - .now
        return try await round(subject, messages, deadline: overall).map { outcome in
            switch outcome {
            case .answered(let reply): return reply
            case .noResponders: throw Self.noResponders(subject)
            case .noAnswer: throw noAnswer(subject, within: min(timeout, bound))
            }
        }
    }

    /// What became of one request of a ``round(_:_:deadline:)``.
    private enum Outcome {
        case answered(NatsRawMessage)
        /// The server said nobody takes the subject (status 503): nothing was stored.
        case noResponders
        /// No answer in time: the request may or may not have been taken.
        case noAnswer
    }

    /// Sends every message (waiting for the connection first, until `overall`) and waits for
    /// their replies until the JetStream timeout from now or `overall`, whichever is first.
    /// - Throws: `CancellationError`; a connection that did not come back in time.
    private func round(
        _ subject: String,
        _ messages: [(headers: MessageHeaders, body: ByteBuffer)],
        deadline overall: ContinuousClock.Instant
    ) async throws -> [Outcome] {
        try await client.waitUntilConnected(deadline: overall, timeout: overall - .now, publishingTo: subject)
        try subscribeIfNeeded()
        let tokens = state.withLock { state -> [UInt64] in
            defer { state.nextToken += UInt64(messages.count) }
            return (1...UInt64(messages.count)).map { state.nextToken + $0 }
        }
        for token in tokens { replies.expect(token) }
        defer { for token in tokens { replies.cancel(token) } }
        for (token, message) in zip(tokens, messages) {
            try client.publish(subject: subject, reply: inboxPrefix + String(token), headers: message.headers, body: message.body)
        }
        // Every reply by one deadline, each wait ending on its timer (no task per request).
        let deadline = min(ContinuousClock.now + timeout, overall)
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(tokens.count)
        for token in tokens {
            guard let reply = await replies.wait(for: token, timeout: deadline - .now) else {
                try Task.checkCancellation()
                outcomes.append(.noAnswer)
                continue
            }
            outcomes.append(reply.status == 503 ? .noResponders : .answered(reply))
        }
        return outcomes
    }

    private static func noResponders(_ subject: String) -> NatsError {
        NatsError(.noResponders, "nothing answers on '\(subject)' (no stream or no JetStream)")
    }

    private func noAnswer(_ subject: String, within limit: Duration) -> NatsError {
        var message = "no answer from '\(subject)' within \(limit)"
        // Lost with the connection, perhaps: say so (the server may or may not have it).
        if let outage = client.outage { message += "; the connection is \(outage.summary(describing: NatsError.text(of:)))" }
        return NatsError(.timeout, message)
    }

    /// Calls the JetStream API and decodes its answer, throwing its error if it reports one.
    func call<Answer: Decodable>(_ subject: String, _ body: some Encodable, as answer: Answer.Type) async throws -> Answer {
        let payload = ByteBuffer(bytes: try JSONEncoder().encode(body))
        return try decode(await request(subject, body: payload), as: Answer.self, from: subject)
    }

    /// Calls the JetStream API with an empty request.
    func call<Answer: Decodable>(_ subject: String, as answer: Answer.Type) async throws -> Answer {
        try decode(await request(subject, body: ByteBuffer()), as: Answer.self, from: subject)
    }

    func decode<Answer: Decodable>(_ reply: NatsRawMessage, as answer: Answer.Type, from subject: String) throws -> Answer {
        // One pass over the JSON: a PubAck is decoded for every JetStream publish.
        let decoded: APIAnswer<Answer>
        do {
            decoded = try JSONDecoder().decode(APIAnswer<Answer>.self, from: Data(reply.body.readableBytesView))
        } catch {
            throw NatsError(.jetStream, "unexpected answer from '\(subject)': \(String(buffer: reply.body))")
        }
        switch decoded {
        case .answer(let answer):
            return answer
        case .failure(let failure):
            throw NatsError(
                .jetStream,
                "\(failure.description) (code \(failure.code), err_code \(failure.errCode ?? 0)) from '\(subject)'",
                jetStreamErrorCode: failure.errCode
            )
        }
    }

    private func subscribeIfNeeded() throws {
        try state.withLock { state in
            guard state.subscription == nil else { return }
            let prefix = inboxPrefix
            let replies = self.replies
            state.subscription = try client.subscribe(
                subject: prefix + "*",
                queue: nil,
                limits: NatsConfiguration.PendingLimits(),
                label: "jetstream-replies"
            ) { message in
                // A late or duplicate answer to a request that gave up is refused and dropped.
                if let token = UInt64(message.subject.dropFirst(prefix.count)) { replies.deliver(message, for: token) }
                return .accepted
            }
        }
    }

    func close() {
        state.withLock { $0.subscription?.unsubscribe() }
        replies.cancelAll()
    }

    // MARK: - Streams and consumers

    /// Creates the stream, or updates it when it exists with another configuration.
    func declare(_ stream: NatsStream) async throws {
        let config = StreamConfig(stream)
        do {
            _ = try await call("$JS.API.STREAM.CREATE.\(stream.name)", config, as: StreamInfo.self)
        } catch let error as NatsError where error.jetStreamErrorCode == 10058 {
            _ = try await call("$JS.API.STREAM.UPDATE.\(stream.name)", config, as: StreamInfo.self)
        }
    }

    func streamState(_ name: String) async throws -> NatsStreamState {
        try await call("$JS.API.STREAM.INFO.\(name)", as: StreamInfo.self).state
    }

    /// The `server_name` of the server that leads the stream in a cluster (nil on one server,
    /// or while it elects one).
    func streamLeader(_ name: String) async throws -> String? {
        try await call("$JS.API.STREAM.INFO.\(name)", as: StreamInfo.self).cluster?.leader
    }

    func deleteStream(_ name: String) async throws {
        _ = try await call("$JS.API.STREAM.DELETE.\(name)", as: Success.self)
    }

    /// Creates (or finds) a consumer; returns its name.
    func createConsumer(stream: String, config: ConsumerConfig) async throws -> String {
        let request = CreateConsumer(streamName: stream, config: config)
        let subject =
            if let durable = config.durableName {
                "$JS.API.CONSUMER.DURABLE.CREATE.\(stream).\(durable)"
            } else {
                "$JS.API.CONSUMER.CREATE.\(stream)"
            }
        return try await call(subject, request, as: ConsumerInfo.self).name
    }

    func consumerState(stream: String, consumer: String) async throws -> NatsConsumerState {
        try await call("$JS.API.CONSUMER.INFO.\(stream).\(consumer)", as: NatsConsumerState.self)
    }

    func deleteConsumer(stream: String, consumer: String) async throws {
        _ = try await call("$JS.API.CONSUMER.DELETE.\(stream).\(consumer)", as: Success.self)
    }

    /// Publishes to a stream's subject and waits for the PubAck.
    func publish(subject: String, headers: MessageHeaders, body: ByteBuffer) async throws -> NatsPubAck {
        try await publish(subject: subject, [(headers, body)])[0]
    }

    /// Publishes a batch in order and returns its PubAcks, in the same order; `deadline` bounds
    /// the whole publish (a wait for the connection included), by default the JetStream timeout.
    ///
    /// A stream without a leader (a cluster electing one after its leader was lost: nats-server
    /// takes 4 to 9 s) answers nothing, or "no responders": the messages without a PubAck are sent
    /// again, with the same headers and so the same `Nats-Msg-Id`, which the stream keeps one of
    /// within its duplicate window, until `deadline`. "No responders" from a subject that no stream
    /// takes fails at once (the JetStream API says so).
    func publish(
        subject: String,
        _ messages: [(headers: MessageHeaders, body: ByteBuffer)],
        deadline: ContinuousClock.Instant? = nil
    ) async throws -> [NatsPubAck] {
        let overall = deadline ?? ContinuousClock.now + timeout
        var acks = [NatsPubAck?](repeating: nil, count: messages.count)
        var pending = Array(messages.indices)
        var pauses = Self.resendPauses.attempts()
        var checkedForStream = false
        while true {
            let outcomes = try await round(subject, pending.map { messages[$0] }, deadline: overall)
            var unanswered: [Int] = []
            var failure: NatsError?
            for (index, outcome) in zip(pending, outcomes) {
                switch outcome {
                case .answered(let reply):
                    do {
                        acks[index] = try NatsPubAckParser.parse(reply.body) ?? decode(reply, as: NatsPubAck.self, from: subject)
                    } catch let error as NatsError where error.jetStreamErrorCode == Self.temporarilyUnavailable {
                        // "JetStream system temporarily unavailable": the cluster is electing.
                        unanswered.append(index)
                        failure = error
                    }
                case .noResponders:
                    unanswered.append(index)
                    failure = Self.noResponders(subject)
                case .noAnswer:
                    unanswered.append(index)
                    failure = failure ?? noAnswer(subject, within: timeout)
                }
            }
            guard let failure else { return acks.compactMap { $0 } }
            if failure.code == .noResponders, !checkedForStream {
                // Nobody at all takes a subject no stream covers: that is not an election.
                checkedForStream = true
                let exists = try await streamExists(for: subject, deadline: overall)
                if !exists { throw failure }
            }
            guard let pause = pauses.nextDelay(), ContinuousClock.now + pause < overall else { throw failure }
            client.logger.debug(
                "JetStream publish without a PubAck (a stream electing its leader?); sending again with the same message ids",
                metadata: ["courier.destination": "\(subject)", "courier.nats.unacknowledged": "\(unanswered.count)", "error": "\(failure)"]
            )
            try await Task.sleep(for: pause)
            pending = unanswered
        }
    }

    /// JetStream's `err_code` for "JetStream system temporarily unavailable" (an election).
    private static let temporarilyUnavailable = 10008

    /// The pauses between sending again what a stream did not acknowledge: short, as an election
    /// ends within seconds and every pause adds to the publish's latency.
    private static let resendPauses = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))

    /// Whether a stream takes `subject`, as the JetStream API says: false when the API answers
    /// none, or nothing answers it (no JetStream); true when it does not answer in time (its meta
    /// leader may be electing too: better to wait than to fail).
    private func streamExists(for subject: String, deadline: ContinuousClock.Instant) async throws -> Bool {
        let request = ByteBuffer(bytes: try JSONEncoder().encode(["subject": subject]))
        let outcomes = try await round("$JS.API.STREAM.NAMES", [([:], request)], deadline: deadline)
        switch outcomes.first {
        case .answered(let reply):
            guard let names = try? decode(reply, as: StreamNames.self, from: "$JS.API.STREAM.NAMES") else { return true }
            return !(names.streams ?? []).isEmpty
        case .noResponders:
            return false
        case .noAnswer, nil:
            return true
        }
    }
}

// MARK: - JetStream API bodies

/// A JetStream API answer: an `error` object, or the answer itself.
enum APIAnswer<Answer: Decodable>: Decodable {
    struct Failure: Decodable {
        var code: Int
        var errCode: Int?
        var description: String

        enum CodingKeys: String, CodingKey {
            case code, errCode = "err_code", description
        }
    }

    case answer(Answer)
    case failure(Failure)

    private enum CodingKeys: String, CodingKey {
        case error
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let failure = try container.decodeIfPresent(Failure.self, forKey: .error) {
            self = .failure(failure)
        } else {
            self = .answer(try Answer(from: decoder))
        }
    }
}

struct Success: Decodable {}

/// The answer of `$JS.API.STREAM.NAMES`.
struct StreamNames: Decodable {
    var streams: [String]?
}

struct StreamInfo: Decodable {
    struct Cluster: Decodable {
        var leader: String?
    }

    var state: NatsStreamState
    /// In a cluster: which server leads the stream (its `server_name`).
    var cluster: Cluster?
}

struct ConsumerInfo: Decodable {
    var name: String
}

struct StreamConfig: Encodable {
    var name: String
    var subjects: [String]
    var retention: String
    var storage: String
    var maxAge: Int64
    var duplicateWindow: Int64?
    var maxMsgsPerSubject: Int64?
    var allowRollupHeaders: Bool?
    var denyDelete: Bool?
    var discard: String?
    var numReplicas = 1

    enum CodingKeys: String, CodingKey {
        case name, subjects, retention, storage, discard
        case maxAge = "max_age", duplicateWindow = "duplicate_window", maxMsgsPerSubject = "max_msgs_per_subject"
        case allowRollupHeaders = "allow_rollup_hdrs", denyDelete = "deny_delete", numReplicas = "num_replicas"
    }

    init(_ stream: NatsStream) {
        name = stream.name
        subjects = stream.subjects
        retention = stream.retention.rawValue
        storage = stream.storage.rawValue
        maxAge = stream.maxAge?.wholeNanoseconds ?? 0
        duplicateWindow = stream.duplicateWindow?.wholeNanoseconds
        numReplicas = max(1, stream.replicas)
    }
}

struct ConsumerConfig: Encodable {
    var durableName: String?
    var deliverSubject: String?
    var deliverGroup: String?
    var deliverPolicy: String
    var ackPolicy: String
    var ackWait: Int64?
    var maxDeliver: Int?
    var maxAckPending: Int?
    var filterSubject: String?
    var replayPolicy = "instant"
    var memoryStorage: Bool?
    var inactiveThreshold: Int64?

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", deliverSubject = "deliver_subject", deliverGroup = "deliver_group"
        case deliverPolicy = "deliver_policy", ackPolicy = "ack_policy", ackWait = "ack_wait", maxDeliver = "max_deliver"
        case maxAckPending = "max_ack_pending", filterSubject = "filter_subject", replayPolicy = "replay_policy"
        case memoryStorage = "mem_storage", inactiveThreshold = "inactive_threshold"
    }
}

struct CreateConsumer: Encodable {
    var streamName: String
    var config: ConsumerConfig

    enum CodingKeys: String, CodingKey {
        case streamName = "stream_name", config
    }
}

struct PullRequest: Encodable {
    var batch: Int
    var expires: Int64
}
