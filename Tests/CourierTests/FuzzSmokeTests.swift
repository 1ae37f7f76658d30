import Courier
@testable import CourierFuzzSupport
import CourierNATS
import CourierRedis
import NIOCore
import NIOEmbedded
import Testing

/// The short run of the fuzz targets that `make test` includes (`make fuzz` is the long one, with
/// libFuzzer): every parser on 10,000 inputs, half generated valid ones checked against what they
/// encode, half byte-level mutations, from a fixed seed. Plus the regressions the fuzzing found.
@Suite("Fuzz smoke")
struct FuzzSmokeTests {
    static let inputsPerTarget = 10_000

    // One campaign at a time: each is seconds of CPU, and the rest of the suite shares the cores.
    // At background priority, so on threads of its own rather than one of the two threads of the
    // default cooperative pool, which it held for the whole suite (every other test's tasks then
    // queued for the one left; a 0.5 s shutdown test took 3 to 13 s).
    @Test("10,000 generated and mutated inputs: no crash, no broken invariant", .serialized, arguments: FuzzTarget.allCases)
    func shortCampaign(_ target: FuzzTarget) async {
        let summary = await Task(priority: .background) {
            await FuzzCampaign(target: target, seed: 0xC0_FFEE).run(count: Self.inputsPerTarget)
        }.value
        #expect(summary.inputs == Self.inputsPerTarget)
        #expect(summary.generated > 0 && summary.mutated > 0)
        for failure in summary.failures { Issue.record("\(failure)") }
    }

    @Test("the seed corpus passes every check", arguments: FuzzTarget.allCases)
    func seeds(_ target: FuzzTarget) async throws {
        for seed in target.seeds() { try await target.run(seed) }
    }

    @Test("a RESP value split at any point decodes as the whole, fed to a ByteToMessageHandler")
    func respSplitAnywhere() throws {
        var random = FuzzRandom(seed: 7)
        for _ in 0..<100 {
            let (bytes, value) = RESPFuzz.generateValue(&random)
            for cut in 1..<bytes.count {
                let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder()))
                try channel.writeInbound(ByteBuffer(bytes: bytes[..<cut]))
                #expect(try channel.readInbound(as: RESPValue.self) == nil)
                try channel.writeInbound(ByteBuffer(bytes: bytes[cut...]))
                let read = try #require(try channel.readInbound(as: RESPValue.self))
                #expect(RESPFuzz.equivalent(read, value), "\(value) cut at \(cut) read as \(read)")
                #expect(try channel.finish().isClean)
            }
        }
    }

    @Test("Baggage.parse of a rendered baggage round-trips")
    func baggageRoundTrip() {
        var random = FuzzRandom(seed: 11)
        for _ in 0..<2_000 {
            let baggage = BaggageFuzz.randomBaggage(&random)
            let parsed = Baggage.parse(header: baggage.headerValue)
            #expect(parsed.baggage == baggage && parsed.malformedMembers == 0)
        }
    }

    // MARK: - Regressions the fuzzing found

    @Test("RESP: a chain of attributes nests like an aggregate, within maxDepth (it recursed once per attribute, unbounded)")
    func respAttributeChain() throws {
        // 800 kB of `|0` crashed the decoder with a stack overflow.
        var chain = ByteBuffer(string: String(repeating: "|0\r\n", count: 200_000) + "+OK\r\n")
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&chain) }
        var short = ByteBuffer(string: String(repeating: "|0\r\n", count: 3) + "+OK\r\n")
        #expect(try RESPDecoder.parse(&short) == .simpleString(ByteBuffer(string: "OK")))
    }

    @Test("RESP: a line of exactly maxLineLength is read when a read ends between its CR and LF")
    func respLineAtTheLimitSplitBeforeLF() throws {
        var limits = RESPDecoder.Limits()
        limits.maxLineLength = 8
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder(limits: limits)))
        try channel.writeInbound(ByteBuffer(string: "+12345678\r"))
        try channel.writeInbound(ByteBuffer(string: "\n"))
        #expect(try channel.readInbound(as: RESPValue.self) == .simpleString(ByteBuffer(string: "12345678")))
        var tooLong = ByteBuffer(string: "+123456789")
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&tooLong, limits: limits) }
        var tooLongWithCR = ByteBuffer(string: "+123456789\r")
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&tooLongWithCR, limits: limits) }
    }

    @Test("NATS: header values with a colon survive nats.c and the empty-value repair (they were split as swallowed lines)")
    func natsValuesWithColons() throws {
        let headers = [
            ("correlation_id", "urn:uuid:1234"), ("content-type", ""), ("reply_to", "http://example.com:8080/x"),
            ("x-time", "12:00 UTC"), ("message_id", "m-1"),
        ]
        let block = NatsHeaderFuzz.block(headers)
        let raw = try NatsHeaderFuzz.read(block, headerLength: block.count, FuzzCheck(target: .natsHeaders, input: block))
        #expect(raw.headerError == nil)
        #expect(Dictionary(uniqueKeysWithValues: raw.headers.map { ($0.name, $0.value) }) == Dictionary(uniqueKeysWithValues: headers))
        #expect(repairingEmptyValues(["a": "http://x", "b": "12:00"]) == ["a": "http://x", "b": "12:00"])
        #expect(repairingEmptyValues(["content-type": "correlation_id: c-1"]) == ["content-type": "", "correlation_id": "c-1"])
        #expect(repairingEmptyValues(["content-type": "reply_to:"]) == ["content-type": "", "reply_to": ""])
    }
}
