import CourierNATS
import Foundation
import NIOCore

/// `NatsPubAckParser` against `JSONDecoder`: whatever the fast reader accepts, Foundation's
/// decoder must read the same PubAck from the same bytes; and every PubAck the generator writes
/// the way nats-server does is read by the fast reader (so the fallback stays the exception).
enum NatsPubAckFuzz {
    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        guard let fast = NatsPubAckParser.parse(ByteBuffer(bytes: input)) else { return }
        let decoded: NatsPubAck
        do {
            decoded = try JSONDecoder().decode(NatsPubAck.self, from: Data(input))
        } catch {
            throw check.failure("the fast reader took \(fast), JSONDecoder refused: \(error)")
        }
        try check.require(decoded == fast, "the fast reader read \(fast), JSONDecoder \(decoded)")
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        [
            Array(#"{"stream":"ORDERS","seq":1}"#.utf8),
            Array(#"{"stream":"ORDERS","seq":18446744073709551615,"duplicate":true}"#.utf8),
            Array(#"{"stream":"KV_config","domain":"hub","seq":7}"#.utf8),
            Array(#"{"error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}"#.utf8),
        ] + (0..<4).map { _ in (try? generate(&random)) ?? [] }
    }

    /// A PubAck as nats-server writes one, checked to read back as written.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let stream = random.string(Int.random(in: 1...12, using: &random), from: "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-0123456789ñé")
        let sequence = random.next() >> UInt64.random(in: 0...63, using: &random)
        let duplicate = random.oneIn(3)
        var fields = [#""stream":"\#(stream)""#, #""seq":\#(sequence)"#]
        if duplicate { fields.append(#""duplicate":true"#) }
        if random.oneIn(4) { fields.append(#""domain":"hub""#) }
        fields.shuffle(using: &random)
        let bytes = Array(("{" + fields.joined(separator: random.oneIn(2) ? "," : ", ") + "}").utf8)
        let check = FuzzCheck(target: .natsPubAck, input: bytes)
        let read = NatsPubAckParser.parse(ByteBuffer(bytes: bytes))
        try check.require(read == NatsPubAck(stream: stream, sequence: sequence, duplicate: duplicate), "wrote \(stream) \(sequence) \(duplicate), read \(String(describing: read))")
        return bytes
    }
}
