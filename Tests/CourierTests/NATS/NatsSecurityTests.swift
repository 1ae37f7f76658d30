@testable import CourierNATS
import Courier
import Foundation
import NIOCore
import Testing

/// TLS, mutual TLS, NKeys and `.creds` files against nats-servers of the tests' own.
@Suite("NATS TLS and credentials")
struct NatsSecurityTests {
    /// A server with TLS (`verify` asks for client certificates too).
    static func tlsServer(_ files: NatsSecurityFiles, verifyClients: Bool = false) async throws -> OwnedNatsServer {
        let server = try OwnedNatsServer(
            arguments: try files.serverArguments(
                "tls-\(verifyClients)-\(UUID().uuidString.prefix(8)).conf",
                """
                tls {
                  cert_file: "\(files.path("server.crt"))"
                  key_file: "\(files.path("server.key"))"
                  ca_file: "\(files.path("ca.crt"))"
                  verify: \(verifyClients)
                }
                """
            )
        )
        try await server.start()
        return server
    }

    /// Publishes through a broker on `configuration` and expects its own subscriber to get it.
    static func expectRoundTrip(_ configuration: NatsConfiguration) async throws {
        let broker = NatsBroker(configuration: configuration)
        let subject = NatsTestServer.unique("secure")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, _: MessageContext) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("over a secured connection", to: subject)
            #expect(try await inbox.wait(count: 1) == ["over a secured connection"])
        }
    }

    /// Connects a transport on `configuration` (and closes it if that worked).
    static func connect(_ configuration: NatsConfiguration) async throws {
        let transport = NatsTransport(configuration: configuration)
        try await transport.connect()
        await transport.close()
    }

    static func configuration(_ url: String, maxReconnectAttempts: Int = 0) throws -> NatsConfiguration {
        var configuration = try NatsConfiguration(url: url)
        configuration.reconnect.maximumAttempts = maxReconnectAttempts
        return configuration
    }

    @Test("TLS: a tls:// URL and a trusted CA carry a message end to end through the broker")
    func trustedCA() async throws {
        let files = try await NatsSecurityFiles.tls()
        let server = try await Self.tlsServer(files)
        var configuration = try Self.configuration("tls://127.0.0.1:\(server.port)")
        configuration.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"))
        try await Self.expectRoundTrip(configuration)

        // `localhost`, a name the certificate carries, checked against the URL's host.
        var byName = try Self.configuration("tls://localhost:\(server.port)")
        byName.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"))
        try await Self.connect(byName)
        await server.kill()
    }

    @Test("TLS: a server certificate from an untrusted CA, or without the expected name, fails the handshake")
    func untrustedCA() async throws {
        let files = try await NatsSecurityFiles.tls()
        let otherAuthority = try await NatsSecurityFiles.otherAuthority()
        let server = try await Self.tlsServer(files)
        var untrusted = try Self.configuration("tls://127.0.0.1:\(server.port)")
        untrusted.tls = NatsTLS(trustedCertificatesFile: otherAuthority.path("ca.crt"))
        let error = await expectNatsError(.tlsHandshake) { try await Self.connect(untrusted) }
        #expect(error?.clientStatus != nil)

        var wrongName = try Self.configuration("tls://127.0.0.1:\(server.port)")
        wrongName.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"), hostnameVerification: .expected("elsewhere.example"))
        await expectNatsError(.tlsHandshake) { try await Self.connect(wrongName) }

        // The same name unchecked: only the chain counts.
        wrongName.tls?.hostnameVerification = .disabled
        try await Self.connect(wrongName)
        await server.kill()

        // No server at all is no TLS failure, though the URL says tls://.
        var trusted = try Self.configuration("tls://127.0.0.1:\(server.port)")
        trusted.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"))
        await expectNatsError(.client) { try await Self.connect(trusted) }
    }

    @Test("TLS: a CA or client certificate file that cannot be read is a configuration error")
    func unreadableTLSFiles() async throws {
        let files = try await NatsSecurityFiles.tls()
        let server = try await Self.tlsServer(files)
        var missingCA = try Self.configuration("tls://127.0.0.1:\(server.port)")
        missingCA.tls = NatsTLS(trustedCertificatesFile: files.path("no-such-ca.crt"))
        let error = await expectNatsError(.tlsConfiguration) { try await Self.connect(missingCA) }
        #expect(error?.message.contains("no-such-ca.crt") == true)

        var missingKey = try Self.configuration("tls://127.0.0.1:\(server.port)")
        missingKey.tls = NatsTLS(
            trustedCertificatesFile: files.path("ca.crt"),
            clientCertificate: .init(certificateChainFile: files.path("client.crt"), privateKeyFile: files.path("no-such.key"))
        )
        await expectNatsError(.tlsConfiguration) { try await Self.connect(missingKey) }

        var differentHosts = try Self.configuration("tls://127.0.0.1:\(server.port),tls://localhost:\(server.port)")
        differentHosts.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"))
        await expectNatsError(.tlsConfiguration) { try await Self.connect(differentHosts) }
        await server.kill()
    }

    @Test("mutual TLS: a server that verifies clients accepts the client certificate and refuses its absence")
    func mutualTLS() async throws {
        let files = try await NatsSecurityFiles.tls()
        let server = try await Self.tlsServer(files, verifyClients: true)
        var withCertificate = try Self.configuration("tls://127.0.0.1:\(server.port)")
        withCertificate.tls = NatsTLS(
            trustedCertificatesFile: files.path("ca.crt"),
            clientCertificate: .init(certificateChainFile: files.path("client.crt"), privateKeyFile: files.path("client.key"))
        )
        try await Self.expectRoundTrip(withCertificate)

        var withoutCertificate = try Self.configuration("tls://127.0.0.1:\(server.port)")
        withoutCertificate.tls = NatsTLS(trustedCertificatesFile: files.path("ca.crt"))
        await expectNatsError(.tlsHandshake) { try await Self.connect(withoutCertificate) }
        await server.kill()
    }

    @Test("NKey: a seed file the server knows the public key of signs in; without it the server refuses")
    func nkeySeed() async throws {
        let files = try await NatsSecurityFiles.credentials()
        let server = try OwnedNatsServer(arguments: try files.serverArguments("nkey-server-\(UUID().uuidString.prefix(8)).conf", "include nkey.conf\n"))
        try await server.start()
        var configuration = try Self.configuration(server.url)
        configuration.credentials = .nkey(publicKey: try files.nkeyPublicKey, seedFile: files.path("nkey.seed"))
        try await Self.expectRoundTrip(configuration)

        await expectNatsError(.authentication) { try await Self.connect(try Self.configuration(server.url)) }
        var missingSeed = try Self.configuration(server.url)
        missingSeed.credentials = .nkey(publicKey: try files.nkeyPublicKey, seedFile: files.path("no-such.seed"))
        await expectNatsError(.credentialsFile) { try await Self.connect(missingSeed) }
        await server.kill()
    }

    @Test("creds file: a user JWT and seed sign in to a server in operator mode; a missing or empty file is a credentials error")
    func credentialsFile() async throws {
        let files = try await NatsSecurityFiles.credentials()
        let server = try OwnedNatsServer(
            arguments: try files.serverArguments("operator-server-\(UUID().uuidString.prefix(8)).conf", "include operator.conf\n")
        )
        try await server.start()
        var configuration = try Self.configuration(server.url)
        configuration.credentials = .credentialsFile(files.path("user.creds"))
        try await Self.expectRoundTrip(configuration)

        await expectNatsError(.authentication) { try await Self.connect(try Self.configuration(server.url)) }
        var missing = try Self.configuration(server.url)
        missing.credentials = .credentialsFile(files.path("no-such.creds"))
        await expectNatsError(.credentialsFile) { try await Self.connect(missing) }

        // A file with a JWT but no seed: nats.c finds no seed to sign the server's nonce with.
        let jwtOnly = files.path("jwt-only-\(UUID().uuidString.prefix(8)).creds")
        let creds = try String(contentsOfFile: files.path("user.creds"), encoding: .utf8)
        try String(creds.prefix(while: { $0 != "*" })).write(toFile: jwtOnly, atomically: true, encoding: .utf8)
        var noSeed = try Self.configuration(server.url)
        noSeed.credentials = .credentialsFile(jwtOnly)
        await expectNatsError(.credentialsFile) { try await Self.connect(noSeed) }
        await server.kill()
    }

    @Test("TLS and a creds file together: mutual TLS to a server in operator mode")
    func tlsWithCredentials() async throws {
        let tls = try await NatsSecurityFiles.tls()
        let credentials = try await NatsSecurityFiles.credentials()
        let server = try OwnedNatsServer(
            arguments: try credentials.serverArguments(
                "tls-operator-\(UUID().uuidString.prefix(8)).conf",
                """
                include operator.conf
                tls {
                  cert_file: "\(tls.path("server.crt"))"
                  key_file: "\(tls.path("server.key"))"
                  ca_file: "\(tls.path("ca.crt"))"
                  verify: true
                }
                """
            )
        )
        try await server.start()
        var configuration = try Self.configuration("tls://127.0.0.1:\(server.port)")
        configuration.tls = NatsTLS(
            trustedCertificatesFile: tls.path("ca.crt"),
            clientCertificate: .init(certificateChainFile: tls.path("client.crt"), privateKeyFile: tls.path("client.key"))
        )
        configuration.credentials = .credentialsFile(credentials.path("user.creds"))
        try await Self.expectRoundTrip(configuration)
        await server.kill()
    }
}
