@testable import CourierRabbit
import Testing

/// Reading `amqp://` URLs with one node or a cluster's several, as values.
@Suite("RabbitMQ configuration: URLs and endpoints")
struct RabbitConfigurationTests {
    @Test("one host: the login, the port (5672, or 5671 for amqps) and the vhost")
    func oneHost() throws {
        let plain = try RabbitConfiguration(url: "amqp://orders:s%40cret@rabbit.internal/shop")
        #expect(plain.endpoints == [RabbitEndpoint(host: "rabbit.internal", port: 5672)])
        #expect(plain.host == "rabbit.internal" && plain.port == 5672)
        #expect(plain.username == "orders" && plain.password == "s@cret" && plain.virtualHost == "shop")
        #expect(plain.tls == nil)
        let secure = try RabbitConfiguration(url: "amqps://guest:guest@localhost/%2f")
        #expect(secure.endpoints == [RabbitEndpoint(host: "localhost", port: 5671)])
        #expect(secure.virtualHost == "/" && secure.tls != nil)
    }

    @Test("a cluster: comma-separated hosts become the endpoints, in order, each with its port or the default")
    func severalHosts() throws {
        let cluster = try RabbitConfiguration(url: "amqp://guest:pa%2Css@h1:5672,h2:5673,h3/orders")
        #expect(cluster.endpoints == [
            RabbitEndpoint(host: "h1", port: 5672), RabbitEndpoint(host: "h2", port: 5673), RabbitEndpoint(host: "h3", port: 5672),
        ])
        #expect(cluster.password == "pa,ss" && cluster.virtualHost == "orders")
        let secure = try RabbitConfiguration(url: "amqps://a:1,b")
        #expect(secure.endpoints == [RabbitEndpoint(host: "a", port: 1), RabbitEndpoint(host: "b", port: 5671)])
        #expect(secure.virtualHost == "/")
        // The password never shows; every node does.
        #expect(!cluster.description.contains("pa,ss") && cluster.description.contains("h2:5673"))
    }

    @Test("an empty or malformed host in the list is an invalid URL, with the password left out of the error")
    func malformedHosts() {
        for url in ["amqp://guest:hunter2@h1,,h3/", "amqp://guest:hunter2@h1,/", "amqp://guest:hunter2@h1,h2:notaport/"] {
            let error = #expect(throws: RabbitError.self, "\(url)") { try RabbitConfiguration(url: url) }
            #expect(error?.code == .invalidURL)
            #expect(error?.message.contains("hunter2") == false, "\(error?.message ?? "")")
        }
    }

    @Test("endpoints set in code: host and port are the first's; the list is never empty")
    func endpointsInCode() {
        var configuration = RabbitConfiguration(endpoints: [RabbitEndpoint(host: "a", port: 5700), RabbitEndpoint(host: "b")])
        #expect(configuration.host == "a" && configuration.port == 5700)
        configuration.port = 5701
        #expect(configuration.endpoints[0] == RabbitEndpoint(host: "a", port: 5701))
        configuration.endpoints = []
        #expect(configuration.endpoints.count == 2)
        #expect(RabbitConfiguration(endpoints: []).endpoints == [RabbitEndpoint(host: "127.0.0.1", port: 5672)])
        #expect(RabbitEndpoint(host: "::1", port: 5672).description == "[::1]:5672")
    }
}
