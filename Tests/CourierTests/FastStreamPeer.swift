@_spi(BrokerModule) import Courier
import CourierChildProcess
import CourierTraceView
import Foundation
import NIOCore
import Synchronization
import Testing

/// A real FastStream service (Tests/Interop/<broker>_peer.py) run by the tests: `make test` installs
/// it into .venv-peer and sets `COURIER_PEER_PYTHON`.
final class FastStreamPeer: Sendable {
    struct Span: Sendable {
        var name: String
        var traceID: String
        var spanID: String
        var parentSpanID: String?
    }

    struct Received: Sendable {
        var type: String
        var value: String
        var baggage: [String: String]
        var headers: [String: String] = [:]
        var key: String? = nil
    }

    /// A link of one of the peer's spans (a batch consumer links to the producers' spans).
    struct Link: Sendable {
        var spanID: String
        var traceID: String
        var linkedSpanID: String
    }

    struct Output: Sendable {
        var received: [Received]
        var spans: [Span]
        var links: [Link] = []
    }

    private let process: ChildProcess
    private let output: URL
    private let holdsPermit = Mutex(true)

    /// How many peers run at once across the whole suite: each is a Python process that spends a
    /// second or two of CPU importing FastStream, and the suite's other tests share the machine's
    /// two cores with them; more at once only makes every peer's deadlines tighter.
    private static let permits = AsyncSemaphore(permits: 2)

    private func releasePermit() {
        let held = holdsPermit.withLock { held in
            defer { held = false }
            return held
        }
        if held { Self.permits.release() }
    }

    deinit {
        releasePermit()
    }

    static var python: String {
        ProcessInfo.processInfo.environment["COURIER_PEER_PYTHON"] ?? ".venv-peer/bin/python"
    }

    static func script(_ broker: String) -> String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/\(broker)_peer.py").path
    }

    /// Starts the peer; for `consume`, returns once it has subscribed (it prints READY).
    init(
        _ mode: String,
        broker: String = "redis",
        kind: String,
        name: String,
        url: String,
        count: Int = 3,
        extra: [String] = []
    ) async throws {
        try await Self.permits.acquire()
        output = FileManager.default.temporaryDirectory.appendingPathComponent("peer-\(UUID().uuidString).json")
        process = try ChildProcess(
            Self.python,
            [Self.script(broker), mode, "--url", url, "--kind", kind, "--name", name, "--count", String(count), "--out", output.path] + extra,
            output: .capture
        )
        if mode.hasPrefix("consume") || mode == "respond" {
            let isReady = await process.waitForOutput(containing: "READY")
            try #require(isReady, "the FastStream peer exited before it was ready: \(process.output.suffix(2000))")
        }
    }

    /// Waits for the peer to finish and reads what it wrote.
    func result() async throws -> Output {
        let status = await process.exited()
        releasePermit()
        try #require(status == 0, "the FastStream peer failed (exit \(status)): \(process.output.suffix(2000))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output)) as? [String: Any])
        try? FileManager.default.removeItem(at: output)
        let received = (json["received"] as? [[String: Any]] ?? []).map { entry in
            let value = entry["value"]
            let text: String
            if let string = value as? String {
                text = string
            } else if let value, let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
                text = String(decoding: data, as: UTF8.self)
            } else {
                text = "\(value ?? "nil")"
            }
            return Received(
                type: entry["type"] as? String ?? "",
                value: text,
                baggage: entry["baggage"] as? [String: String] ?? [:],
                headers: entry["headers"] as? [String: String] ?? [:],
                key: entry["key"] as? String
            )
        }
        let spans = (json["spans"] as? [[String: Any]] ?? []).map { span in
            Span(
                name: span["name"] as? String ?? "",
                traceID: span["traceId"] as? String ?? "",
                spanID: span["spanId"] as? String ?? "",
                parentSpanID: span["parentSpanId"] as? String
            )
        }
        let links = (json["links"] as? [[String: Any]] ?? []).map { link in
            Link(
                spanID: link["spanId"] as? String ?? "",
                traceID: link["traceId"] as? String ?? "",
                linkedSpanID: link["linkedSpanId"] as? String ?? ""
            )
        }
        return Output(received: received, spans: spans, links: links)
    }
}

extension FastStreamPeer {
    /// What a Courier handler saw of one message the peer published: the body (text, or hex for
    /// bytes), the content type and the `tenant` baggage entry.
    typealias Arrival = (body: String, contentType: String?, tenant: String)

    static func arrival(_ body: ByteBuffer, _ context: MessageContext) -> Arrival {
        let printable = body.readableBytesView.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        let text = printable ? String(buffer: body) : body.readableBytesView.map { String(format: "%02x", $0) }.joined()
        return (text, context.message.contentType, context.baggage["tenant"] ?? "-")
    }

    /// The peer's `publish` mode sends a str, a JSON object and bytes with baggage tenant=acme.
    static func expectPublishedBodies(_ arrived: [Arrival]) {
        #expect(arrived.map(\.body) == ["hello", #"{"id":1,"item":"tea"}"#, "ff00"])
        #expect(arrived.map(\.contentType) == ["text/plain", "application/json", nil])
        #expect(arrived.map(\.tenant) == ["acme", "acme", "acme"])
    }

    /// Each Courier process span has its parent among the peer's spans of the same trace.
    static func expectConnected(_ processes: [RecordedSpan], to output: Output) throws {
        for process in processes {
            let pythonSpans = output.spans.filter { $0.traceID == process.traceID }
            try #require(!pythonSpans.isEmpty, "Courier's process span is in no FastStream trace")
            #expect(pythonSpans.contains { $0.spanID == process.parentSpanID })
        }
    }
}
