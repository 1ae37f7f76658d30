@testable import CourierKafka
@testable import CourierRabbit
@testable import CourierNATS
@testable import CourierRedis
import Courier
import Foundation
import InMemoryTracing
import Logging
import MetricsTestKit
import Synchronization
import Testing
import Tracing

/// Everything a service shows about itself, collected to prove that no secret is among it: every
/// log line (at trace level, with its metadata), every thrown error's description, every finished
/// span's attributes, every metric's label and dimensions, and configurations as printed.
final class SecretWitness: Sendable {
    let logs = CapturedLogs()
    let tracer = InMemoryTracer()
    let metrics = TestMetrics()
    private let texts = Mutex<[String]>([])

    var logger: Logger { logs.logger(level: .trace) }

    var telemetry: TelemetryMiddleware { TelemetryMiddleware(tracer: tracer, metricsFactory: metrics) }

    /// Records what `value` prints as, in every way Swift prints a value.
    func show(_ value: Any) {
        var dumped = ""
        dump(value, to: &dumped)
        texts.withLock { $0 += [String(describing: value), String(reflecting: value), dumped] }
    }

    /// Runs `body`, which must throw, and records the error as it prints.
    func expectError(_ comment: Comment, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected an error: \(comment)")
        } catch {
            show(error)
        }
    }

    /// Everything seen so far, one text per entry.
    var everything: [String] {
        var all = texts.withLock { $0 }
        for entry in logs.entries {
            all.append(entry.message)
            all += entry.metadata.map { "\($0.key)=\($0.value)" }
        }
        for span in tracer.finishedSpans {
            all.append(span.operationName)
            span.attributes.forEach { key, value in all.append("\(key)=\(value)") }
            all += span.events.map(\.name)
            if let status = span.status { all.append("\(status)") }
            all += span.errors.map { "\($0.error)" }
        }
        let dimensions = metrics.counters.map { ($0.label, $0.dimensions) } + metrics.timers.map { ($0.label, $0.dimensions) }
            + metrics.recorders.map { ($0.label, $0.dimensions) } + metrics.meters.map { ($0.label, $0.dimensions) }
        for (label, pairs) in dimensions {
            all.append(label)
            all += pairs.map { "\($0.0)=\($0.1)" }
        }
        return all
    }

    /// Fails the test for each place a secret appears.
    func expectNowhere(_ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let all = everything
        #expect(!all.isEmpty, sourceLocation: sourceLocation)
        for secret in secrets {
            for text in all where text.contains(secret) {
                Issue.record("the secret '\(secret)' appears in: \(text)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("Credentials never reach logs, errors, spans or metrics")
struct CredentialLeakTests {
    @Test("URLs and property dictionaries are redacted; usernames stay")
    func redaction() {
        #expect(Redaction.url("nats://alice:s3cret@127.0.0.1:4222") == "nats://alice:***@127.0.0.1:4222")
        #expect(Redaction.url("nats://t0ken@host:4222") == "nats://***@host:4222")
        #expect(Redaction.url("amqp://guest@host/", loneUserInfo: .username) == "amqp://guest@host/")
        #expect(Redaction.url("amqp://guest:pw@host/vhost?heartbeat=5") == "amqp://guest:***@host/vhost?heartbeat=5")
        #expect(Redaction.url("redis://:p%40ss@host/3") == "redis://:***@host/3")
        #expect(Redaction.url("nats://a:x@h1:1,nats://b:y@h2:2") == "nats://a:***@h1:1,nats://b:***@h2:2")
        #expect(Redaction.url("kafka://h:9092?sasl.password=pw&acks=all") == "kafka://h:9092?sasl.password=***&acks=all")
        #expect(Redaction.url("alice:s3cret@host") == "***@host")
        #expect(Redaction.url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222")
        // An @ in the path is not user info.
        #expect(Redaction.url("http://host/a@b") == "http://host/a@b")

        let properties = Redaction.properties([
            "bootstrap.servers": "h:9092", "sasl.password": "pw", "ssl.key.password": "kp", "ssl.key.pem": "PEM",
            "sasl.username": "alice", "sasl.oauthbearer.config": "clientSecret=x", "sasl.jaas.config": "j",
            "sasl.mechanism": "PLAIN", "compression.type": "lz4", "message.key": "k",
        ])
        #expect(properties["bootstrap.servers"] == "h:9092")
        #expect(properties["sasl.username"] == "alice")
        #expect(properties["sasl.mechanism"] == "PLAIN")
        #expect(properties["compression.type"] == "lz4")
        #expect(properties["message.key"] == "k")
        for key in ["sasl.password", "ssl.key.password", "ssl.key.pem", "sasl.oauthbearer.config", "sasl.jaas.config"] {
            #expect(properties[key] == Redaction.mask, "\(key)")
        }

        let scrubber = SecretScrubber(urls: ["nats://alice:p@ss w0rd@h", "redis://:a%2Fb@h"], ["t0ken", nil, ""])
        #expect(scrubber.scrub("auth p@ss w0rd / p%40ss%20w0rd / a/b / a%2Fb / t0ken") == "auth *** / *** / *** / *** / ***")
    }

    @Test("NATS: secrets in URLs, tokens and configuration fields stay out of everything shown")
    func nats() async throws {
        let password = "nats-Passw0rd-\(UUID().uuidString.prefix(6))"
        let token = "nats-T0ken-\(UUID().uuidString.prefix(6))"
        let wrongPassword = "nats-Wr0ng-\(UUID().uuidString.prefix(6))"
        let secrets = [password, token, wrongPassword]
        let users = try OwnedNatsServer(arguments: ["--user", "alice", "--pass", password])
        try await users.start()
        let tokens = try OwnedNatsServer(arguments: ["--auth", token])
        try await tokens.start()
        let witness = SecretWitness()

        // A malformed URL, a wrong password, a URL token and configuration fields.
        await witness.expectError("malformed port") { _ = try NatsConfiguration(url: "nats://alice:\(password)@127.0.0.1:port") }
        await witness.expectError("wrong scheme") { _ = try NatsConfiguration(url: "http://alice:\(password)@127.0.0.1:1") }
        await witness.expectError("wrong password") {
            try await NatsTransport(configuration: NatsConfiguration(url: "nats://alice:\(wrongPassword)@127.0.0.1:\(users.port)"), logger: witness.logger)
                .connect()
        }
        await witness.expectError("no server") {
            try await NatsTransport(configuration: NatsConfiguration(url: "nats://alice:\(password)@127.0.0.1:1"), logger: witness.logger).connect()
        }
        let tokenBroker = try NatsBroker(url: "nats://\(token)@127.0.0.1:\(tokens.port)", middlewares: [witness.telemetry], logger: witness.logger)
        witness.show(tokenBroker.transport.client.configuration)
        try await tokenBroker.transport.connect()
        try await tokenBroker.publish("token", to: NatsTestServer.unique("secret"))
        await tokenBroker.transport.close()
        var fields = NatsConfiguration(servers: ["nats://127.0.0.1:\(users.port)"])
        fields.username = "alice"
        fields.password = password
        witness.show(fields)
        var tokenFields = NatsConfiguration(servers: ["nats://127.0.0.1:\(tokens.port)"])
        tokenFields.token = token
        witness.show(tokenFields)
        let fieldsBroker = NatsBroker(configuration: tokenFields, middlewares: [witness.telemetry], logger: witness.logger)
        try await fieldsBroker.transport.connect()
        try await fieldsBroker.publish("fields", to: NatsTestServer.unique("secret"))
        await fieldsBroker.transport.close()

        // A traced service whose server restarts under it: reconnect, publish, consume.
        var configuration = try NatsConfiguration(url: "nats://alice:\(password)@127.0.0.1:\(users.port)")
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(100))
        witness.show(configuration)
        let broker = NatsBroker(configuration: configuration, middlewares: [witness.telemetry], logger: witness.logger)
        let subject = NatsTestServer.unique("secret")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, context: MessageContext) in
            context.logger.info("handled", metadata: ["text": "\(text)"])
            inbox.put(text)
        }
        try await withRunningNats(broker) { () async throws in
            witness.show(broker.transport.client.connectedURL as Any)
            try await broker.publish("before", to: subject)
            try await inbox.wait(count: 1)
            await users.kill()
            try await users.start()
            try await broker.publish("after", to: subject)
            try await inbox.wait(count: 2, timeout: .seconds(15))
        }
        await users.kill()
        await tokens.kill()

        #expect(witness.logs.contains(.info, "reconnected to NATS"))
        #expect(witness.tracer.finishedSpans.contains { $0.operationName == "process \(subject)" })
        witness.expectNowhere(secrets)
    }

    @Test("NATS: the JWT and seeds of .creds and NKey seed files stay out of everything shown")
    func natsCredentialFiles() async throws {
        let files = try await NatsSecurityFiles.credentials()
        let secrets = try files.secrets
        #expect(secrets.count == 3)
        let operatorServer = try OwnedNatsServer(arguments: try files.serverArguments("leak-operator.conf", "include operator.conf\n"))
        try await operatorServer.start()
        let nkeyServer = try OwnedNatsServer(arguments: try files.serverArguments("leak-nkey.conf", "include nkey.conf\n"))
        try await nkeyServer.start()
        let witness = SecretWitness()

        // Configurations as printed, dumped and mirrored, with every kind of credentials.
        var creds = NatsConfiguration(servers: [operatorServer.url])
        creds.credentials = .credentialsFile(files.path("user.creds"))
        creds.reconnect.maximumAttempts = 0
        witness.show(creds)
        var nkey = NatsConfiguration(servers: [nkeyServer.url])
        nkey.credentials = .nkey(publicKey: try files.nkeyPublicKey, seedFile: files.path("nkey.seed"))
        nkey.reconnect.maximumAttempts = 0
        witness.show(nkey)
        var split = creds
        split.credentials = .jwtAndSeedFiles(jwt: files.path("user.creds"), seed: files.path("nkey.seed"))
        witness.show(split)

        // Failures: credentials the server does not know, and a seed file used as a creds file.
        await witness.expectError("NKey unknown to an operator-mode server") {
            var wrong = nkey
            wrong.servers = [operatorServer.url]
            try await NatsTransport(configuration: wrong, logger: witness.logger).connect()
        }
        await witness.expectError("a user JWT unknown to an NKey server") {
            var wrong = creds
            wrong.servers = [nkeyServer.url]
            try await NatsTransport(configuration: wrong, logger: witness.logger).connect()
        }
        await witness.expectError("a seed file read as a creds file") {
            var wrong = creds
            wrong.credentials = .credentialsFile(files.path("nkey.seed"))
            try await NatsTransport(configuration: wrong, logger: witness.logger).connect()
        }

        // Traced services on both, publishing and consuming.
        for (configuration, server) in [(creds, operatorServer), (nkey, nkeyServer)] {
            let broker = NatsBroker(configuration: configuration, middlewares: [witness.telemetry], logger: witness.logger)
            witness.show(broker.transport.configuration)
            let subject = NatsTestServer.unique("secret")
            let inbox = Inbox<String>()
            broker.subscriber(subject) { (text: String, context: MessageContext) in
                context.logger.info("handled", metadata: ["text": "\(text)"])
                inbox.put(text)
            }
            try await server.attachingLog {
                try await withRunningNats(broker) { () async throws in
                    try await broker.publish("signed in", to: subject)
                    try await inbox.wait(count: 1)
                }
            }
        }
        await operatorServer.kill()
        await nkeyServer.kill()

        #expect(witness.tracer.finishedSpans.contains { $0.operationName.hasPrefix("process ") })
        witness.expectNowhere(secrets)
    }

    @Test("Redis: secrets in URLs and configuration fields stay out of everything shown")
    func redis() async throws {
        let defaultPassword = "redis-Def4ult-\(UUID().uuidString.prefix(6))"
        let password = "redis-Passw0rd-\(UUID().uuidString.prefix(6))"
        let wrongPassword = "redis-Wr0ng-\(UUID().uuidString.prefix(6))"
        let secrets = [defaultPassword, password, wrongPassword]
        let server = try await OwnedRedisServer(
            arguments: ["--requirepass", defaultPassword, "--user", "app", "on", ">\(password)", "~*", "&*", "+@all"],
            credentials: ":\(defaultPassword)@"
        )
        try await server.start()
        defer { server.stop() }
        let witness = SecretWitness()
        let base = "127.0.0.1:\(server.port)"

        await witness.expectError("malformed port") { _ = try RedisConfiguration(url: "redis://app:\(password)@127.0.0.1:port") }
        await witness.expectError("malformed database") { _ = try RedisConfiguration(url: "redis://app:\(password)@\(base)/db") }
        await witness.expectError("wrong scheme") { _ = try RedisConfiguration(url: "http://app:\(password)@\(base)") }
        await witness.expectError("wrong password") {
            _ = try await RedisConnection.connect(RedisConfiguration(url: "redis://app:\(wrongPassword)@\(base)"))
        }
        let wrongBroker = try RedisBroker(url: "redis://app:\(wrongPassword)@\(base)", middlewares: [witness.telemetry], logger: witness.logger)
        await witness.expectError("publish with a wrong password") { try await wrongBroker.publish("x", to: "nowhere") }
        let lone = try RedisBroker(url: "redis://\(defaultPassword)@\(base)", middlewares: [witness.telemetry], logger: witness.logger)
        witness.show(try RedisConfiguration(url: "redis://\(defaultPassword)@\(base)"))
        try await lone.publish("lone", to: RedisTestServer.unique("secret"))
        let fields = RedisConfiguration(host: "127.0.0.1", port: server.port, username: "app", password: password)
        witness.show(fields)
        try await RedisBroker(configuration: fields, middlewares: [witness.telemetry], logger: witness.logger).publish("fields", to: .list(RedisTestServer.unique("secret")))

        // A traced service on a list and a channel whose server restarts under it.
        let configuration = try RedisConfiguration(url: "redis://app:\(password)@\(base)")
        witness.show(configuration)
        let broker = RedisBroker(configuration: configuration, middlewares: [witness.telemetry], logger: witness.logger)
        let list = RedisTestServer.unique("secret-list")
        let channel = RedisTestServer.unique("secret-channel")
        let inbox = Inbox<String>()
        broker.subscriber(.list(list)) { (text: String, context: MessageContext) in
            context.logger.info("handled", metadata: ["text": "\(text)"])
            inbox.put(text)
        }
        broker.subscriber(channel) { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("list-before", to: .list(list))
            try await broker.publish("channel-before", to: channel)
            try await inbox.wait(count: 2)
            server.stop()
            try await server.start()
            try await broker.publish("list-after", to: .list(list))
            try await inbox.wait(count: 3, timeout: .seconds(20))
        }

        #expect(witness.logs.contains(.warning, "reconnecting"))
        #expect(witness.tracer.finishedSpans.contains { $0.operationName == "process \(list)" })
        witness.expectNowhere(secrets)
    }

    @Test("Kafka: secrets in URLs and librdkafka properties stay out of everything shown")
    func kafka() async throws {
        let password = "kafka-Passw0rd-\(UUID().uuidString.prefix(6))"
        let keyPassword = "kafka-K3y-\(UUID().uuidString.prefix(6))"
        let secrets = [password, keyPassword]
        let witness = SecretWitness()
        let server = KafkaTestServer.url.replacingOccurrences(of: "kafka://", with: "")

        await witness.expectError("malformed port") { _ = try KafkaConfiguration(url: "kafka://app:\(password)@127.0.0.1:port") }
        await witness.expectError("wrong scheme") { _ = try KafkaConfiguration(url: "http://app:\(password)@\(server)") }
        var invalid = try KafkaConfiguration(url: "kafka://app:\(password)@\(server)")
        invalid.properties["sasl.mechanism"] = "NO-SUCH-MECHANISM"
        witness.show(invalid)
        await witness.expectError("an invalid property next to a password") { try await KafkaTransport(configuration: invalid, logger: witness.logger).connect() }

        // SASL credentials the server does not ask for (tansu speaks plaintext): the client's
        // connection errors and the failed publish are shown, never the password.
        var sasl = try KafkaConfiguration(url: "kafka://app:\(password)@\(server)")
        sasl.deliveryTimeout = .seconds(2)
        witness.show(sasl)
        let saslBroker = KafkaBroker(configuration: sasl, middlewares: [witness.telemetry], logger: witness.logger)
        await witness.expectError("publish where SASL fails") { try await saslBroker.publish("x", to: KafkaTestServer.unique("secret")) }
        await saslBroker.transport.close()

        // A traced service with a secret property it does not use (a TLS key password).
        var configuration = try KafkaTestServer.configuration()
        configuration.properties["ssl.key.password"] = keyPassword
        witness.show(configuration)
        let broker = KafkaBroker(configuration: configuration, middlewares: [witness.telemetry], logger: witness.logger)
        let topic = KafkaTestServer.unique("secret-topic")
        let inbox = Inbox<String>()
        broker.subscriber(.topics(topic, start: .beginning)) { (text: String, context: MessageContext) in
            context.logger.info("handled", metadata: ["text": "\(text)"])
            inbox.put(text)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("hello", to: topic)
            try await inbox.wait(count: 1)
        }
        #expect(witness.tracer.finishedSpans.contains { $0.operationName == "process \(topic)" })
        witness.expectNowhere(secrets)
    }

    @Test("RabbitMQ: the password in the URL stays out of everything shown")
    func rabbit() async throws {
        let wrongPassword = "rabbit-Wr0ng-\(UUID().uuidString.prefix(6))"
        let witness = SecretWitness()
        let server = RabbitConformanceTests.url
        let authority = server.split(separator: "@").last.map(String.init) ?? "127.0.0.1:5672/"

        await witness.expectError("wrong scheme") { _ = try RabbitConfiguration(url: "http://guest:\(wrongPassword)@\(authority)") }
        let wrong = try RabbitConfiguration(url: "amqp://guest:\(wrongPassword)@\(authority)")
        witness.show(wrong)
        let broker = RabbitBroker(transport: RabbitTransport(configuration: wrong, logger: witness.logger), middlewares: [witness.telemetry], logger: witness.logger)
        await witness.expectError("publish with a wrong password") { try await broker.publish("x", to: "nowhere") }
        await broker.transport.close()

        // A traced service with the right password (guest's, which is no secret here).
        let right = try RabbitConfiguration(url: server)
        witness.show(right)
        let service = RabbitBroker(transport: RabbitTransport(configuration: right, logger: witness.logger), middlewares: [witness.telemetry], logger: witness.logger)
        let queue = "courier-test-secret-\(UUID().uuidString.prefix(8).lowercased())"
        let inbox = Inbox<String>()
        service.subscriber(.queue(RabbitQueue(queue, durable: false, autoDelete: true))) { (text: String, context: MessageContext) in
            context.logger.info("handled", metadata: ["text": "\(text)"])
            inbox.put(text)
        }
        try await withRunningApp([service]) { () async throws in
            await service.waitUntilSubscribed()
            try await service.publish("hello", to: queue)
            try await inbox.wait(count: 1)
        }
        #expect(witness.tracer.finishedSpans.contains { $0.operationName == "process \(queue)" })
        #expect("\(right)".contains("***"))
        witness.expectNowhere([wrongPassword])
    }
}
