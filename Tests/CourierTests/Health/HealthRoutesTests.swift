import AsyncHTTPClient
import Courier
import CourierHealth
import CourierMemory
import CourierRedis
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing

/// The readiness and liveness routes over real HTTP, against real brokers.
@Suite("Health: routes and service")
struct HealthRoutesTests {
    struct Answer {
        var status: Int
        var report: HealthReport
    }

    /// GETs `path` on the local port and decodes the report.
    static func get(_ port: Int, _ path: String) async throws -> Answer {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        #expect(response.headers.first(name: "content-type")?.hasPrefix("application/json") == true)
        return Answer(status: Int(response.status.code), report: try JSONDecoder().decode(HealthReport.self, from: Data(buffer: body)))
    }

    @Test("CourierHealthService: /health/ready goes 200 → 503 when the Redis server goes away; /health/live stays 200")
    func readinessFollowsTheServer() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        let broker = try RedisBroker(url: server.url)
        broker.subscriber(.list("jobs")) { (_: String, _) in }
        let ports = Inbox<Int>()
        let health = CourierHealthService(
            check: CourierHealthCheck(brokers: [broker], pingTimeout: .seconds(5)),
            host: "127.0.0.1",
            port: 0,
            onServerRunning: { ports.put($0) }
        )
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await withRunningService(health) {
                let port = try await ports.wait(count: 1)[0]

                let ready = try await Self.get(port, "/health/ready")
                #expect(ready.status == 200)
                #expect(ready.report.status == "ok")
                #expect(ready.report.brokers.map(\.name) == ["redis 127.0.0.1:\(server.port)"])
                #expect(ready.report.brokers.first?.connection == "connected")
                #expect(try await Self.get(port, "/health/live").status == 200)

                server.stop()

                let unready = try await Self.get(port, "/health/ready")
                #expect(unready.status == 503)
                #expect(unready.report.status == "unavailable")
                let failing = try #require(unready.report.failing.first)
                #expect(failing.name == "redis 127.0.0.1:\(server.port)")
                #expect(failing.system == "redis")
                #expect(failing.reason?.contains("did not answer a ping") == true, "\(failing)")
                // The process is alive: the broker keeps running (and reconnecting).
                #expect(try await Self.get(port, "/health/live").status == 200)
            }
        }
    }

    @Test("routes on the application's own Hummingbird router: not ready before the broker runs, ready while, not live after")
    func ownRouter() async throws {
        let broker = MemoryBroker()
        broker.subscriber("jobs") { (_: String, _) in }
        let router = Router()
        router.get("hello") { _, _ in "hi" }
        router.addCourierHealthRoutes(CourierHealthCheck(brokers: [broker]), path: "probes")
        try await withServedRouter(router) { port in
            let idle = try await Self.get(port, "/probes/ready")
            #expect(idle.status == 503)
            #expect(idle.report.brokers.first?.reason == "the broker is idle, not running")
            #expect(try await Self.get(port, "/probes/live").status == 200)

            try await withRunningApp([broker]) {
                await broker.waitUntilSubscribed()
                let ready = try await Self.get(port, "/probes/ready")
                #expect(ready.status == 200)
                #expect(ready.report.brokers.first?.lifecycle == "running")
            }

            let stopped = try await Self.get(port, "/probes/live")
            #expect(stopped.status == 503)
            #expect(stopped.report.brokers.first?.reason == "the broker stopped")
            #expect(stopped.report.brokers.first?.connection == "closed")
        }
    }
}

/// Runs `body` with a Hummingbird application serving `router` on a free loopback port, which it
/// is given; the application stops when `body` returns.
func withServedRouter<T>(_ router: Router<BasicRequestContext>, _ body: (_ port: Int) async throws -> T) async throws -> T {
    let ports = Inbox<Int>()
    let application = Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { ports.put($0.localAddress?.port ?? 0) },
        logger: Logger(label: "courier-tests.http")
    )
    return try await withRunningService(application) {
        try await body(try await ports.wait(count: 1)[0])
    }
}
