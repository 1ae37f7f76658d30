import Courier
import CourierNATS
import Foundation

// README: "JSON: dates, decimals and Python's snake_case" (decimals and UUIDs exactly).
struct Payment: Codable, Sendable, MessageCodable {
    var paymentId: UUID       // "f81d4fae-7dec-11d0-a765-00a0c91e6bf6": lower case under every coding
    var amount: Decimal       // .python: "1234567890.123456789", every digit; .default: a JSON number
}

func exactValues() throws -> NatsBroker {
    // .python writes decimals as strings, as pydantic does; any coding can choose it.
    let broker = try NatsBroker(url: "nats://127.0.0.1:4222", options: BrokerOptions(json: .python))
    let camelCaseStrings = JSONCoding(keys: .asDeclared, decimals: .string)
    broker.subscriber("payments", options: SubscriberOptions(json: camelCaseStrings)) { (payment: Payment, context) in
        context.logger.info("payment", metadata: ["amount": "\(payment.amount)"])
    }
    return broker
}
