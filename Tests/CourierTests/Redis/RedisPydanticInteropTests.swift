import Courier
import CourierRedis
import Foundation
import Testing

/// A FastStream handler with a pydantic model (datetime, UUID, Decimal, an enum, optionals and a
/// nested model) on one redis-server with Courier: Courier's JSON is what pydantic reads, and what
/// pydantic writes (offsets, naive times, decimals as strings) is what Courier reads.
@Suite("JSON interop with pydantic models")
struct RedisPydanticInteropTests {
    struct Invoice: Codable, MessageCodable, Equatable {
        enum Status: String, Codable { case open, paid }

        struct Line: Codable, Equatable {
            var sku: String
            var quantity: Int
            var unitPrice: Decimal
        }

        var invoiceId: UUID
        var issuedAt: Date
        var dueAt: Date?
        var total: Decimal
        var status: Status
        var note: String?
        var lines: [Line]
    }

    @Test("Courier → pydantic → Courier: every field survives both ways")
    func roundTrip() async throws {
        let name = RedisTestServer.unique("pydantic")
        let broker = try RedisBroker(url: RedisTestServer.url, options: BrokerOptions(json: .python))
        let paid = Inbox<Invoice>()
        broker.subscriber(.list(name + ".out")) { (invoice: Invoice, _) in paid.put(invoice) }
        let sent = Invoice(
            invoiceId: UUID(),
            issuedAt: Date(timeIntervalSince1970: 1_795_600_800.123456),
            dueAt: nil,
            total: Decimal(string: "12.50")!,
            status: .open,
            note: "first",
            lines: [Invoice.Line(sku: "tea", quantity: 2, unitPrice: Decimal(string: "6.25")!)]
        )
        let output = try await withRunningRedis(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer("pydantic", kind: "list", name: name, url: RedisTestServer.url, count: 1)
            try await broker.publish(sent, to: .list(name))
            _ = try await paid.wait(count: 1)
            return try await peer.result()
        }
        // What pydantic read from Courier's JSON.
        let read = try #require(output.received.first)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(read.value.utf8)) as? [String: Any])
        #expect(fields["invoice_id"] as? String == sent.invoiceId.uuidString.lowercased())
        #expect(fields["issued_at"] as? String == "2026-11-25T10:00:00.123456Z")
        #expect(fields["total"] as? String == "12.5")
        #expect(fields["status"] as? String == "open")
        #expect(fields["note"] as? String == "first")
        #expect(fields["due_at"] is NSNull)
        let line = try #require((fields["lines"] as? [[String: Any]])?.first)
        #expect(line["unit_price"] as? String == "6.25")
        // What Courier read from pydantic's JSON: an offset, a naive time, a decimal as a string.
        let answer = try #require(paid.values.first)
        #expect(answer.invoiceId == sent.invoiceId)
        #expect(answer.status == .paid)
        #expect(abs(answer.issuedAt.timeIntervalSince(sent.issuedAt)) < 1e-6)
        #expect(answer.dueAt == Date(timeIntervalSince1970: 1_796_117_400))  // 2026-12-01T09:30:00, naive = UTC
        #expect(answer.total == Decimal(string: "12.51"))
        #expect(answer.note == nil)
        #expect(answer.lines == sent.lines)
    }
}
