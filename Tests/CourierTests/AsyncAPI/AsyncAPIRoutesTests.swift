import ArgumentParser
import AsyncHTTPClient
import Courier
import CourierAsyncAPI
import CourierChildProcess
import CourierRedis
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing

/// The document served by a running service, its page rendered by a real browser, and written
/// from the command line without a broker.
@Suite("AsyncAPI: served, rendered and written")
struct AsyncAPIRoutesTests {
    static func get(_ port: Int, _ path: String) async throws -> (status: Int, contentType: String?, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        return (Int(response.status.code), response.headers.first(name: "content-type"), String(buffer: body))
    }

    /// Runs `body` with a Hummingbird application serving the seed pipeline's document (Redis
    /// lists, `Order` bodies); never connected to Redis.
    static func withServedDocument(_ body: (_ port: Int, _ broker: any AsyncAPIDescribable) async throws -> Void) async throws {
        let broker = try AsyncAPISeed.broker("redis-list", order: true)
        let router = Router()
        router.addAsyncAPIRoutes(brokers: [broker], info: .init(title: "Orders", version: "1.2.0", description: "Takes orders."))
        try await withServedRouter(router) { port in
            try await body(port, broker)
        }
    }

    @Test("GET /asyncapi.json and /asyncapi.yaml: the document in 3.0.0, or 2.6.0 when asked; an unknown version is a 400")
    func servedForms() async throws {
        try await Self.withServedDocument { port, broker in
            let json = try await Self.get(port, "/asyncapi.json")
            #expect(json.status == 200 && json.contentType == "application/json")
            let served = try JSONDecoder().decode(JSONValue.self, from: Data(json.body.utf8))
            let expected = try AsyncAPIDocument(brokers: [broker], info: .init(title: "Orders", version: "1.2.0", description: "Takes orders."))
            #expect(served == expected.value)
            #expect(served["info"]?["title"] == "Orders")

            let older = try JSONDecoder().decode(JSONValue.self, from: Data(try await Self.get(port, "/asyncapi.json?version=2.6.0").body.utf8))
            #expect(older["asyncapi"] == "2.6.0" && older["operations"] == nil)

            let yaml = try await Self.get(port, "/asyncapi.yaml")
            #expect(yaml.status == 200 && yaml.contentType == "application/yaml")
            #expect(yaml.body.contains("asyncapi: 3.0.0") && yaml.body.contains("first:FirstHandler:"))

            #expect(try await Self.get(port, "/asyncapi.json?version=1.0").status == 400)
        }
    }

    @Test("the page in headless Chromium, offline: every channel, operation, message and payload field is in the rendered DOM, and ?q= filters it")
    func pageInBrowser() async throws {
        try await Self.withServedDocument { port, broker in
            let page = try await Self.get(port, "/asyncapi")
            #expect(page.status == 200 && page.contentType?.hasPrefix("text/html") == true)
            #expect(!page.body.contains("https://"), "the page loads nothing from the internet unless asked to")

            let document = try AsyncAPIDocument(brokers: [broker]).value
            let dom = try await Self.renderedDOM("http://127.0.0.1:\(port)/asyncapi")
            let parts: [(kind: String, members: JSONValue?)] = [
                ("channel", document["channels"]), ("operation", document["operations"]),
                ("message", document["components"]?["messages"]), ("schema", document["components"]?["schemas"]),
            ]
            for (kind, members) in parts {
                let keys = try #require(members?.object, "the document has \(kind)s").keys
                #expect(!keys.isEmpty)
                for key in keys {
                    #expect(dom.contains("data-kind=\"\(kind)\" data-key=\"\(key)\""), "\(kind) \(key) is on the page")
                }
            }
            for field in ["id", "placed_at", "total", "note"] {
                #expect(dom.contains("<code class=\"field\">\(field)</code>"), "the Order field \(field) is on the page")
            }
            #expect(dom.contains("localhost:6379") && dom.contains("rpush") && dom.contains("lpop"), "servers and bindings are on the page")

            // The search box, run by the browser: only what mentions the query stays visible.
            let filtered = try await Self.renderedDOM("http://127.0.0.1:\(port)/asyncapi?q=ThirdHandler")
            let sections = filtered.components(separatedBy: "<section ").dropFirst().filter { $0.prefix(while: { $0 != ">" }).contains("data-kind") }
            let visible = sections.filter { !$0.prefix(while: { $0 != ">" }).contains("hidden") }
            #expect(!visible.isEmpty && visible.allSatisfy { $0.contains("ThirdHandler") }, "\(visible.count) sections left visible")
            #expect(sections.count > visible.count)
        }
    }

    /// The DOM once headless Chromium has loaded `url` and run its scripts.
    static func renderedDOM(_ url: String) async throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("courier-chromium-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: profile) }
        return try await ChildProcess.run(
            "chromium",
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--user-data-dir=\(profile.path)", "--virtual-time-budget=5000", "--dump-dom", url,
            ]
        )
    }

    @Test("courier-demo --asyncapi writes the document, JSON or YAML, with no broker running")
    func commandLine() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-asyncapi-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let demo = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("courier-demo").path
        let json = directory.appendingPathComponent("demo.json")
        // Port 1: nothing listens there; the document needs no connection.
        try await ChildProcess.run(demo, ["--asyncapi", json.path, "--broker", "kafka://127.0.0.1:1"])
        let document = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: json))
        #expect(document["asyncapi"] == "3.0.0")
        #expect(Set(try #require(document["channels"]?.object).keys) == [
            "first:FirstHandler", "second:SecondHandler", "third:ThirdHandler", "second:Publisher", "third:Publisher",
        ])
        let yaml = directory.appendingPathComponent("demo.yaml")
        try await ChildProcess.run(demo, ["--asyncapi", yaml.path, "--asyncapi-version", "2.6.0", "--broker", "redis://127.0.0.1:1"])
        let text = try String(contentsOf: yaml, encoding: .utf8)
        #expect(text.contains("asyncapi: 2.6.0") && text.contains("method: publish"))
    }

    /// An application's own subcommand.
    struct WriteAsyncAPI: AsyncAPICommand {
        static let configuration = CommandConfiguration(commandName: "asyncapi")
        @OptionGroup var file: AsyncAPIFileOptions
        var info: AsyncAPIDocument.Info { .init(title: "Orders", version: "2.0.0") }
        func brokers() throws -> [any AsyncAPIDescribable] { [try AsyncAPISeed.broker("nats", order: false)] }
    }

    @Test("AsyncAPICommand: an application's subcommand writes the document where its options say")
    func applicationCommand() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("courier-asyncapi-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let command = try WriteAsyncAPI.parseAsRoot(["--output", file.path]) as? WriteAsyncAPI
        try command?.run()
        let document = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: file))
        #expect(document["info"]?["title"] == "Orders")
        #expect(document["channels"]?["first:FirstHandler"]?["bindings"]?["nats"]?["subject"] == "first")
    }
}
