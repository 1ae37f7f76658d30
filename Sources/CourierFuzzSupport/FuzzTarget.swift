/// The parsers under fuzzing. Each target turns one input (arbitrary bytes) into a run of its
/// parser and checks what must hold for every input: no crash, a thrown error rather than a trap,
/// and the target's own consistency rules (see each harness).
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// The RESP2/RESP3 decoder, whole and split at random points as a socket delivers it.
    case resp
    /// The FastStream envelope reader for Redis: binary, legacy JSON, plain.
    case envelope
    /// `TraceParent.isWellFormed`, against a reference reading of the W3C syntax.
    case traceparent
    /// `Baggage.parse(header:)`, and rendering what it read.
    case baggage
    /// The consume side of `TelemetryMiddleware`: `traceparent`, `tracestate` and `baggage`
    /// extracted from message headers with an `InMemoryTracer`.
    case propagation
    /// nats.c's header-block reader as Courier copies its result, and `repairingEmptyValues`.
    case natsHeaders = "nats-headers"
    /// A Kafka record's parts (headers' bytes, key, value or none) as Courier reads them.
    case kafkaRecord = "kafka-record"
    /// AMQP 0-9-1 frames (methods, content headers, field tables) through the frame decoder.
    case amqpFrames = "amqp-frames"
    /// The JetStream PubAck fast reader, against `JSONDecoder`.
    case natsPubAck = "nats-puback"
    /// ISO 8601 date-times as JSON bodies carry them (`ISO8601Timestamp`).
    case date

    /// The longest input worth trying: past it a target only repeats itself more slowly.
    package var maximumInputLength: Int {
        switch self {
        case .resp: 16384
        case .envelope: 8192
        case .traceparent: 512
        // Past the 8192-byte limit, to reach the rejection of oversized headers.
        case .baggage: 9000
        case .propagation: 4096
        case .natsHeaders: 4096
        case .kafkaRecord: 2048
        case .amqpFrames: 8192
        case .natsPubAck: 256
        case .date: 128
        }
    }

    /// Runs the parser on `input` and checks the target's invariants.
    ///
    /// - Throws: ``FuzzFailure`` for a broken invariant.
    package func run(_ input: [UInt8]) async throws(FuzzFailure) {
        switch self {
        case .propagation: try await PropagationFuzz.run(input, FuzzCheck(target: self, input: input))
        default: try runSynchronously(input)
        }
    }

    /// ``run(_:)`` for a caller outside Swift concurrency (libFuzzer's thread): waits for the
    /// asynchronous target on a task of its own.
    package func runBlocking(_ input: [UInt8]) throws(FuzzFailure) {
        guard self == .propagation else { return try runSynchronously(input) }
        let outcome = waitFor { () async -> FuzzFailure? in
            do throws(FuzzFailure) {
                try await run(input)
                return nil
            } catch {
                return error
            }
        }
        if let outcome { throw outcome }
    }

    private func runSynchronously(_ input: [UInt8]) throws(FuzzFailure) {
        let check = FuzzCheck(target: self, input: input)
        switch self {
        case .resp: try RESPFuzz.run(input, check)
        case .envelope: try EnvelopeFuzz.run(input, check)
        case .traceparent: try TraceParentFuzz.run(input, check)
        case .baggage: try BaggageFuzz.run(input, check)
        case .natsHeaders: try NatsHeaderFuzz.run(input, check)
        case .kafkaRecord: try KafkaRecordFuzz.run(input, check)
        case .amqpFrames: try AMQPFrameFuzz.run(input, check)
        case .natsPubAck: try NatsPubAckFuzz.run(input, check)
        case .date: try DateFuzz.run(input, check)
        case .propagation: preconditionFailure("asynchronous target")
        }
    }

    /// Valid inputs of the target, the seed corpus (`Fuzz/corpus/<target>/`) comes from.
    package func seeds() -> [[UInt8]] {
        var random = FuzzRandom(seed: 0x5EED)
        switch self {
        case .resp: return RESPFuzz.seeds(&random)
        case .envelope: return EnvelopeFuzz.seeds(&random)
        case .traceparent: return TraceParentFuzz.seeds(&random)
        case .baggage: return BaggageFuzz.seeds(&random)
        case .propagation: return PropagationFuzz.seeds(&random)
        case .natsHeaders: return NatsHeaderFuzz.seeds(&random)
        case .kafkaRecord: return KafkaRecordFuzz.seeds(&random)
        case .amqpFrames: return AMQPFrameFuzz.seeds(&random)
        case .natsPubAck: return NatsPubAckFuzz.seeds(&random)
        case .date: return DateFuzz.seeds(&random)
        }
    }

    /// A fresh valid input, checked against what the generator knows it encodes (a round trip);
    /// the run of the parser itself follows in ``run(_:)``.
    package func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        switch self {
        case .resp: try RESPFuzz.generate(&random)
        case .envelope: try EnvelopeFuzz.generate(&random)
        case .traceparent: TraceParentFuzz.generate(&random)
        case .baggage: try BaggageFuzz.generate(&random)
        case .propagation: PropagationFuzz.generate(&random)
        case .natsHeaders: try NatsHeaderFuzz.generate(&random)
        case .kafkaRecord: KafkaRecordFuzz.generate(&random)
        case .amqpFrames: try AMQPFrameFuzz.generate(&random)
        case .natsPubAck: try NatsPubAckFuzz.generate(&random)
        case .date: try DateFuzz.generate(&random)
        }
    }
}

/// The fuzzing loop without libFuzzer: seeded generation of valid inputs and byte-level
/// mutation of them. `make test` runs a short one per target; `courier-fuzz` built plainly (by
/// `swift build`) runs one as long as asked.
package struct FuzzCampaign: Sendable {
    /// What one campaign did.
    package struct Summary: Sendable {
        /// Inputs run, generated and mutated.
        package var inputs = 0
        /// Inputs made valid by a generator.
        package var generated = 0
        /// Inputs made by mutating earlier ones.
        package var mutated = 0
        /// The broken invariants, at most five: one is enough to act on.
        package var failures: [FuzzFailure] = []
    }

    /// The parser under test.
    package let target: FuzzTarget
    /// Where the sequence of inputs starts: the same seed, the same inputs.
    package let seed: UInt64

    /// A campaign on `target` whose inputs follow from `seed`.
    package init(target: FuzzTarget, seed: UInt64) {
        self.target = target
        self.seed = seed
    }

    /// Runs `count` inputs: every other one a fresh valid input, the rest mutations of the seeds
    /// and of earlier valid inputs. Stops at the fifth failure.
    package func run(count: Int) async -> Summary {
        var random = FuzzRandom(seed: seed)
        var summary = Summary()
        var pool = target.seeds()
        for index in 0..<count {
            // A campaign is CPU-bound: it lets other tasks of the cooperative pool run now and
            // then, instead of holding a thread for its whole length (with two cores that starves
            // the rest of a test run).
            if index % 64 == 63 { await Task.yield() }
            let input: [UInt8]
            do throws(FuzzFailure) {
                if index % 2 == 0 {
                    input = try target.generate(&random)
                    summary.generated += 1
                    // A bounded pool of recent valid inputs to mutate: memory stays flat however long the run.
                    if pool.count < 256 { pool.append(input) } else { pool[Int.random(in: 0..<pool.count, using: &random)] = input }
                } else {
                    input = FuzzMutator.mutate(pool.randomElement(using: &random) ?? [], pool: pool, limit: target.maximumInputLength, &random)
                    summary.mutated += 1
                }
                summary.inputs += 1
                try await target.run(input)
            } catch {
                summary.failures.append(error)
                if summary.failures.count >= 5 { break }
            }
        }
        return summary
    }
}

/// Byte-level mutations in the manner of libFuzzer's: flips, insertions, deletions, repeats,
/// interesting values and splices, stacked a few at a time.
package enum FuzzMutator {
    static let interesting: [[UInt8]] = [
        [0], [0xFF], [0x7F], [0x80], Array("\r\n".utf8), Array("\n".utf8), Array("-1".utf8), Array("0".utf8),
        Array("2147483648".utf8), Array("9223372036854775808".utf8), Array("-9223372036854775809".utf8),
        Array(":".utf8), Array(": ".utf8), Array("%".utf8), Array(",".utf8), Array(";".utf8), Array("=".utf8),
        Array("|".utf8), Array("*".utf8), Array("$".utf8), Array("\"".utf8), Array("{".utf8), Array("}".utf8),
        [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98, 0x80], [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A],
    ]

    /// A mutation of `input`, at most `limit` bytes long.
    package static func mutate(_ input: [UInt8], pool: [[UInt8]], limit: Int, _ random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<8, using: &random) {
            case 0 where !bytes.isEmpty:
                let index = min(position, bytes.count - 1)
                bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !bytes.isEmpty:
                bytes[min(position, bytes.count - 1)] = UInt8.random(in: 0...255, using: &random)
            case 2:
                bytes.insert(contentsOf: interesting.randomElement(using: &random)!, at: position)
            case 3 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...16, using: &random))
                if position < end { bytes.removeSubrange(position..<end) }
            case 4 where !bytes.isEmpty:
                // A repeated stretch: deep nesting, long lines, many members.
                let start = Int.random(in: 0..<bytes.count, using: &random)
                let stretch = Array(bytes[start..<min(bytes.count, start + Int.random(in: 1...8, using: &random))])
                let copies = Int.random(in: 2...64, using: &random)
                bytes.insert(contentsOf: (0..<copies).flatMap { _ in stretch }, at: position)
            case 5:
                // Splice with another input of the pool.
                if let other = pool.randomElement(using: &random), !other.isEmpty {
                    let start = Int.random(in: 0..<other.count, using: &random)
                    bytes.insert(contentsOf: other[start..<min(other.count, start + Int.random(in: 1...64, using: &random))], at: position)
                }
            case 6:
                bytes = Array(bytes.prefix(position))
            default:
                if !bytes.isEmpty {
                    let index = min(position, bytes.count - 1)
                    bytes[index] = bytes[index] &+ UInt8.random(in: 1...3, using: &random)
                }
            }
        }
        return Array(bytes.prefix(limit))
    }
}
