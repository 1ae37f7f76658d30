import Courier
import CourierChildProcess
import Foundation
import Synchronization
import Testing

/// A real OTLP receiver (Tests/Interop/otlp_receiver.py: opentelemetry-proto's generated classes,
/// grpcio) serving OTLP/HTTP and OTLP/gRPC on free ports of 127.0.0.1. What it received is read
/// back as decoded spans once the tracer under test has flushed (its `run()` returned).
final class OTLPReceiver: Sendable {
    let httpPort: Int
    let grpcPort: Int
    private let process: ChildProcess
    private let output: URL

    var httpEndpoint: String { "http://127.0.0.1:\(httpPort)/v1/traces" }
    var grpcEndpoint: String { "http://127.0.0.1:\(grpcPort)" }

    static var script: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/otlp_receiver.py").path
    }

    /// Starts the receiver and returns once it listens on both ports.
    init(reject: Int = 0) async throws {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("otlp-\(UUID().uuidString).jsonl")
        process = try ChildProcess(
            FastStreamPeer.python, [Self.script, "--out", output.path, "--reject", String(reject)],
            output: .capture, input: true
        )
        let line = await process.waitForOutput(containing: "READY")
            ? process.output.split(separator: "\n").first { $0.hasPrefix("READY") }.map(String.init)
            : nil
        let parts = try #require(line, "the OTLP receiver exited before it was ready").split(separator: " ")
        httpPort = try #require(Int(parts[1]))
        grpcPort = try #require(Int(parts[2]))
    }

    deinit {
        process.closeInput()
        try? FileManager.default.removeItem(at: output)
    }

    /// Stops the receiver.
    func stop() async {
        process.closeInput()
        await process.exited()
    }

    /// Every export request received so far, in arrival order.
    func requests() throws -> [ReceivedRequest] {
        guard let data = try? Data(contentsOf: output) else { return [] }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map { line in
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try ReceivedRequest(json)
        }
    }

    /// Every span received so far.
    func spans() throws -> [ReceivedSpan] {
        try requests().flatMap(\.spans)
    }
}

/// One export request as the receiver decoded it (protobuf's JSON mapping: ids base64, 64-bit
/// integers as strings, enums by name).
struct ReceivedRequest {
    var transport: String
    var headers: [String: String]
    var spans: [ReceivedSpan]

    init(_ json: [String: Any]) throws {
        transport = json["transport"] as? String ?? ""
        headers = json["headers"] as? [String: String] ?? [:]
        let request = json["request"] as? [String: Any] ?? [:]
        var spans: [ReceivedSpan] = []
        for resourceSpans in request["resourceSpans"] as? [[String: Any]] ?? [] {
            let resource = ReceivedSpan.attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
            for scopeSpans in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                let scope = scopeSpans["scope"] as? [String: Any] ?? [:]
                for span in scopeSpans["spans"] as? [[String: Any]] ?? [] {
                    spans.append(
                        ReceivedSpan(
                            span,
                            resource: resource,
                            scopeName: scope["name"] as? String ?? "",
                            scopeVersion: scope["version"] as? String ?? ""
                        )
                    )
                }
            }
        }
        self.spans = spans
    }
}

/// A received span; attribute values are their protobuf-JSON `AnyValue` rendered with sorted keys,
/// e.g. `{"stringValue":"memory"}`, `{"intValue":"5"}`.
struct ReceivedSpan: Sendable {
    struct Event: Sendable, Hashable {
        var name: String
        var time: UInt64
        var attributes: [String: String]
    }

    struct Link: Sendable, Hashable {
        var traceID: String
        var spanID: String
        var traceState: String
        var attributes: [String: String]
        var flags: Int
    }

    var name: String
    var kind: String
    var traceID: String
    var spanID: String
    var parentSpanID: String
    var traceState: String
    var flags: Int
    var start: UInt64
    var end: UInt64
    var attributes: [String: String]
    var events: [Event]
    var links: [Link]
    var statusCode: String?
    var statusMessage: String?
    var resource: [String: String]
    var scopeName: String
    var scopeVersion: String

    init(_ json: [String: Any], resource: [String: String], scopeName: String, scopeVersion: String) {
        name = json["name"] as? String ?? ""
        kind = json["kind"] as? String ?? ""
        traceID = Self.hex(json["traceId"])
        spanID = Self.hex(json["spanId"])
        parentSpanID = Self.hex(json["parentSpanId"])
        traceState = json["traceState"] as? String ?? ""
        flags = json["flags"] as? Int ?? 0
        start = UInt64(json["startTimeUnixNano"] as? String ?? "") ?? 0
        end = UInt64(json["endTimeUnixNano"] as? String ?? "") ?? 0
        attributes = Self.attributes(json["attributes"])
        events = (json["events"] as? [[String: Any]] ?? []).map {
            Event(
                name: $0["name"] as? String ?? "",
                time: UInt64($0["timeUnixNano"] as? String ?? "") ?? 0,
                attributes: Self.attributes($0["attributes"])
            )
        }
        links = (json["links"] as? [[String: Any]] ?? []).map {
            Link(
                traceID: Self.hex($0["traceId"]),
                spanID: Self.hex($0["spanId"]),
                traceState: $0["traceState"] as? String ?? "",
                attributes: Self.attributes($0["attributes"]),
                flags: $0["flags"] as? Int ?? 0
            )
        }
        let status = json["status"] as? [String: Any]
        statusCode = status?["code"] as? String
        statusMessage = status?["message"] as? String
        self.resource = resource
        self.scopeName = scopeName
        self.scopeVersion = scopeVersion
    }

    /// Base64 (protobuf JSON) to lowercase hex, as W3C headers write ids.
    static func hex(_ value: Any?) -> String {
        guard let base64 = value as? String, let data = Data(base64Encoded: base64) else { return "" }
        return data.map { String(format: "%02x", $0) }.joined()
    }

    static func attributes(_ value: Any?) -> [String: String] {
        var result: [String: String] = [:]
        for pair in value as? [[String: Any]] ?? [] {
            guard let key = pair["key"] as? String else { continue }
            let anyValue = pair["value"] ?? [String: Any]()
            let data = (try? JSONSerialization.data(withJSONObject: anyValue, options: [.sortedKeys])) ?? Data()
            result[key] = String(decoding: data, as: UTF8.self)
        }
        return result
    }
}

extension [ReceivedSpan] {
    func named(_ name: String) throws -> ReceivedSpan {
        try #require(first { $0.name == name }, "no span named \(name) among \(map(\.name))")
    }
}
