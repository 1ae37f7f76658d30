import Courier
import CourierChildProcess
@testable import CourierKafka
import Foundation
import Synchronization
import Testing

/// The closest thing to a Kafka cluster this machine has: two tansu brokers over one S3 store
/// (moto's S3 server, `make test-topologies` installs it), each a child process the test can kill.
/// They answer as one cluster (a topic made through one is seen by the other), but tansu has no
/// replication or election: every broker calls itself node 111, leader of every partition, and the
/// data's one copy is in the store. What this tests is the client's failover to another broker of
/// its bootstrap list.
final class OwnedKafkaS3Pair: Sendable {
    /// Brokers on `base` and `base+1`, the S3 server on `base+80`.
    let base: Int
    private let processes = NamedProcesses()

    init() {
        base = TestPorts.reserve(in: 3000...6800, offsets: [0, 1, 80])
    }

    var url: String { "kafka://127.0.0.1:\(base),127.0.0.1:\(base + 1)" }

    /// The Python with moto and boto3 (`scripts/setup.sh topologies` makes it).
    static var motoPython: String {
        ProcessInfo.processInfo.environment["COURIER_MOTO_PYTHON"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".venv-moto/bin/python").path
    }

    func start() async throws {
        let s3 = "http://127.0.0.1:\(base + 80)"
        let moto = try ChildProcess(Self.motoPython, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(base + 80)], output: .capture)
        processes.add("s3", moto)
        let ready = await moto.waitForOutput(containing: "Running on")
        try #require(ready && moto.isRunning, "moto's S3 server did not start: \(moto.output.suffix(2000))")
        try await ChildProcess.run(Self.motoPython, [
            "-c",
            "import boto3; boto3.client('s3', endpoint_url='\(s3)', aws_access_key_id='test', aws_secret_access_key='test', "
                + "region_name='us-east-1').create_bucket(Bucket='tansu')",
        ])
        for index in 0..<2 {
            let port = base + index
            let listener = "tcp://127.0.0.1:\(port)"
            // tansu reads the store's address and keys from its environment.
            let broker = try ChildProcess("/usr/bin/env", [
                "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
                "AWS_ENDPOINT=\(s3)", "AWS_ALLOW_HTTP=true",
                OwnedKafkaServer.binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                "--storage-engine", "s3://tansu/", "--cluster-id", "courier-s3-\(base)",
            ])
            processes.add("k\(index)", broker)
            var accepting = false
            for _ in 0..<100 where !accepting {
                accepting = OwnedKafkaServer.accepts(port: port)
                if !accepting { try await Task.sleep(for: .milliseconds(50)) }
            }
            try #require(accepting, "tansu did not start on port \(port)")
        }
    }

    /// Kills the broker on `port` outright (SIGKILL), as a crash would.
    func kill(port: Int) async {
        await processes.kill("k\(port - base)")
    }
}

/// Issue 24: Kafka with several brokers, one killed under a publisher and a group consumer.
@Suite("Kafka: two brokers over one store, the client's broker killed")
struct KafkaS3TopologyTests {
    @Test("kill -9 of the broker the client's metadata names: publishes and the group consumer go on through the other, nothing acknowledged lost")
    func brokerKilled() async throws {
        let pair = OwnedKafkaS3Pair()
        try await pair.start()
        var configuration = try KafkaConfiguration(url: pair.url)
        // tansu holds a JoinGroup for half the session timeout: a short one.
        configuration.consumerProperties = ["session.timeout.ms": "2000", "heartbeat.interval.ms": "250"]
        configuration.deliveryTimeout = .seconds(30)
        let broker = KafkaBroker(configuration: configuration)
        let topic = KafkaTestServer.unique("s3-failover")
        try await broker.createTopic(topic, partitions: 1)
        let handled = Inbox<Int>()
        let handledAt = Inbox<ContinuousClock.Instant>()
        broker.subscriber(.topics(topic, group: KafkaTestServer.group("s3"), start: .beginning), options: SubscriberOptions(ackPolicy: .ack)) { (number: Int, _) in
            handledAt.put(.now)
            handled.put(number)
        }
        let messages = 300
        var acknowledgedAt: [ContinuousClock.Instant] = []
        var failures: [String] = []
        var killed: ContinuousClock.Instant?
        var killedPort: Int?
        try await withRunningApp([broker]) {
            try #require(await broker.waitUntilRunning())
            for number in 0..<messages {
                do {
                    try await broker.publish(number, to: topic)
                    acknowledgedAt.append(.now)
                } catch {
                    failures.append("\(number): \(error)")
                }
                if number == messages / 3 {
                    // The broker librdkafka's requests go to: node 111 at the address it was told.
                    let handle = try broker.transport.producer().kafkaHandle
                    let brokers = try await handle.call { KafkaAdmin.brokers(handle: handle, timeoutMilliseconds: 5000) }.get()
                    let port = try #require(brokers.first?.port)
                    await pair.kill(port: port)
                    killed = .now
                    killedPort = port
                }
            }
            try await waitUntil(handled, holdsAllOf: Set(0..<messages), timeout: .seconds(60))
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect([pair.base, pair.base + 1].contains(killedPort ?? -1))
        let distinct = Set(handled.values)
        #expect(distinct == Set(0..<messages))
        let kill = try #require(killed)
        FailoverResults.record(
            broker: "kafka",
            form: "2 tansu brokers over one S3 store (moto); kill -9 of the broker in the client's metadata",
            publishingResumedAfter: acknowledgedAt.filter { $0 > kill }.min().map { $0 - kill },
            handlingResumedAfter: handledAt.values.filter { $0 > kill }.min().map { $0 - kill },
            lost: Set(0..<messages).subtracting(distinct).count,
            duplicates: handled.values.count - distinct.count,
            messages: messages
        )
    }
}
