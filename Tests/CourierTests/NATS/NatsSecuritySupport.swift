@testable import CourierNATS
import Courier
import CourierChildProcess
import Foundation
import Testing

/// TLS material and credentials for the NATS security tests, made fresh in a temporary directory.
struct NatsSecurityFiles {
    let directory: URL

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The TLS files the tests share: RSA keys cost CPU time, and on a small machine the
    /// suite's timing-sensitive tests run alongside, so each set is made once per test run.
    private static let sharedTLS = Task { try await makeTLS() }
    private static let sharedOtherAuthority = Task { try await makeTLS() }
    private static let sharedCredentials = Task { try await makeCredentials() }

    /// The CA, the server certificate for `localhost`/127.0.0.1 (``TestCertificates``) and a
    /// client certificate the same CA signed, for mutual TLS.
    static func tls() async throws -> NatsSecurityFiles { try await sharedTLS.value }

    /// Another CA with its own certificates, which the servers of ``tls()`` do not trust.
    static func otherAuthority() async throws -> NatsSecurityFiles { try await sharedOtherAuthority.value }

    /// An operator (JWT) setup with a user `.creds` file, and a plain NKey, made by
    /// `Tests/Interop/nats_credentials.py` (see there for the files). Servers of several tests
    /// load them at once; each test writes its server configuration under a name of its own.
    static func credentials() async throws -> NatsSecurityFiles { try await sharedCredentials.value }

    private static func makeTLS() async throws -> NatsSecurityFiles {
        let files = NatsSecurityFiles(directory: newDirectory("tls"))
        try await TestCertificates.make(in: files.directory)
        try await run(
            "/bin/bash",
            [
                "-c",
                """
                set -e
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key -out client.csr -subj "/CN=courier-client" 2>/dev/null
                printf "extendedKeyUsage=clientAuth" > client.ext
                openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1 -extfile client.ext 2>/dev/null
                """,
            ],
            in: files.directory
        )
        return files
    }

    private static func makeCredentials() async throws -> NatsSecurityFiles {
        let files = NatsSecurityFiles(directory: newDirectory("creds"))
        try FileManager.default.createDirectory(at: files.directory, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/nats_credentials.py").path
        try await run(FastStreamPeer.python, [script, files.directory.path], in: nil)
        return files
    }

    /// The secrets the credential files hold: the user JWT, its seed and the NKey's seed.
    var secrets: [String] {
        get throws {
            let data = try Data(contentsOf: directory.appendingPathComponent("secrets.json"))
            return try JSONDecoder().decode([String: String].self, from: data).values.sorted()
        }
    }

    /// The NKey's public key.
    var nkeyPublicKey: String {
        get throws { try String(contentsOfFile: path("nkey.pub"), encoding: .utf8) }
    }

    /// Writes a nats-server configuration file here and returns the arguments that load it.
    /// (nats-server 2.9 reads `include` paths relative to the including file, absolute ones too.)
    func serverArguments(_ name: String, _ configuration: String) throws -> [String] {
        let file = directory.appendingPathComponent(name)
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        return ["-c", file.path]
    }

    private static func newDirectory(_ kind: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("courier-nats-\(kind)-\(UUID().uuidString.prefix(8))")
    }

    /// Runs a tool to completion without blocking a thread of Swift's cooperative pool.
    private static func run(_ executable: String, _ arguments: [String], in directory: URL?) async throws {
        try await ChildProcess.run(executable, arguments, directory: directory?.path)
    }
}

/// Expects `body` to throw a ``NatsError`` with `code`; returns it.
@discardableResult
func expectNatsError(
    _ code: NatsError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> NatsError? {
    do {
        try await body()
        Issue.record("expected a NatsError \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as NatsError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a NatsError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
