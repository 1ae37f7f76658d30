@testable import CourierNATS
import NIOCore
import Testing

@Suite("NATS PubAck reader")
struct NatsPubAckParserTests {
    @Test("reads the PubAcks nats-server writes", arguments: [
        (#"{"stream":"ORDERS","seq":42}"#, NatsPubAck(stream: "ORDERS", sequence: 42, duplicate: false)),
        (#"{"stream":"ORDERS","seq":7,"duplicate":true}"#, NatsPubAck(stream: "ORDERS", sequence: 7, duplicate: true)),
        (#" { "stream" : "KV_a" , "domain":"hub", "seq" : 0 } "#, NatsPubAck(stream: "KV_a", sequence: 0, duplicate: false)),
    ])
    func reads(_ text: String, _ expected: NatsPubAck) {
        #expect(NatsPubAckParser.parse(ByteBuffer(string: text)) == expected)
    }

    @Test("leaves everything else to JSONDecoder (errors, escapes, other numbers, other keys, repeats, trailing bytes)", arguments: [
        #"{"error":{"code":503,"description":"no responders"}}"#,
        #"{"stream":"OR\"DERS","seq":1}"#,
        #"{"stream":"ORDERS","seq":-1}"#,
        #"{"stream":"ORDERS","seq":1.0}"#,
        #"{"stream":"ORDERS","seq":01}"#,
        #"{"stream":"ORDERS","seq":18446744073709551616}"#,
        #"{"stream":"ORDERS","seq":1,"seq":2}"#,
        #"{"stream":"ORDERS","seq":1,"other":1}"#,
        #"{"stream":"ORDERS"}"#,
        #"{"stream":"ORDERS","seq":1}x"#,
        #"{}"#,
        "",
    ])
    func fallsBack(_ text: String) {
        #expect(NatsPubAckParser.parse(ByteBuffer(string: text)) == nil)
    }
}
