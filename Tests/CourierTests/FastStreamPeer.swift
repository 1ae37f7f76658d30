import Courier
import Foundation
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
    }

    struct Output: Sendable {
        var received: [Received]
        var spans: [Span]
    }

    private let process: Process
    private let output: URL
    private let exited = Latch()

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
        output = FileManager.default.temporaryDirectory.appendingPathComponent("peer-\(UUID().uuidString).json")
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.script(broker), mode, "--url", url, "--kind", kind, "--name", name, "--count", String(count), "--out", output.path] + extra
        let stdout = Pipe()
        process.standardOutput = stdout
        let exited = self.exited
        process.terminationHandler = { _ in exited.open() }
        let ready = Mutex<(seen: String, waiter: CheckedContinuation<Bool, Never>?)>(("", nil))
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            let waiter = ready.withLock { state -> CheckedContinuation<Bool, Never>? in
                state.seen += String(decoding: data, as: UTF8.self)
                return state.seen.contains("READY") || data.isEmpty ? state.waiter.take() : nil
            }
            if data.isEmpty { handle.readabilityHandler = nil }
            waiter?.resume(returning: !data.isEmpty)
        }
        try process.run()
        if mode == "consume" || mode == "respond" {
            let isReady = await withCheckedContinuation { continuation in
                let already = ready.withLock { state -> Bool in
                    if state.seen.contains("READY") { return true }
                    state.waiter = continuation
                    return false
                }
                if already { continuation.resume(returning: true) }
            }
            try #require(isReady, "the FastStream peer exited before it was ready")
        }
    }

    /// Waits for the peer to finish and reads what it wrote.
    func result() async throws -> Output {
        await exited.wait()
        try #require(process.terminationStatus == 0, "the FastStream peer failed (exit \(process.terminationStatus))")
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
                headers: entry["headers"] as? [String: String] ?? [:]
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
        return Output(received: received, spans: spans)
    }
}
