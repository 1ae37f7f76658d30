import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

// nats.c options, errors and blocking calls: what NatsClient needs around the C API.
extension NatsClient {
    static func setServers(_ servers: [String], on options: OpaquePointer) -> natsStatus {
        var pointers = servers.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                natsOptions_SetServers(options, $0, Int32(buffer.count))
            }
        }
    }

    /// The connected server's URL, redacted: nats.c keeps the user info it was given.
    static func connectedURL(of connection: OpaquePointer) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            guard natsConnection_GetConnectedUrl(connection, buffer.baseAddress, buffer.count) == NATS_OK else { return nil }
            return Redaction.url(String(cString: buffer.baseAddress!))
        }
    }

    static func statusText(_ status: natsStatus) -> String {
        String(cString: natsStatus_GetText(status))
    }

    static func lastError(_ context: String, code: NatsError.Code = .client) -> NatsError {
        var status = NATS_OK
        let text = nats_GetLastError(&status).map { String(cString: $0) } ?? statusText(status)
        return NatsError(code, "\(context): \(text)", clientStatus: status == NATS_OK ? nil : Int(status.rawValue))
    }

    /// The error for a nats.c call that returned `status`: nats.c's text for it when it left one
    /// on this thread, else the status's name.
    static func failure(_ status: natsStatus, _ code: NatsError.Code, _ context: String) -> NatsError {
        NatsError(code, "\(context): \(lastErrorText(for: status))", clientStatus: Int(status.rawValue))
    }

    /// nats.c's text for the error it left on this thread, else the name of `status`.
    static func lastErrorText(for status: natsStatus) -> String {
        var lastStatus = NATS_OK
        return nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? statusText(status)
    }

    /// Why a connect failed, as a code: nats.c reports TLS, credential-file and authorization
    /// failures with general statuses (`NATS_ERR`, `NATS_PROTOCOL_ERROR`), so its text decides
    /// too — its text alone, not the context, whose `tls://` URLs would read as a TLS failure.
    static func connectError(_ status: natsStatus, configuration: NatsConfiguration) -> NatsError {
        let context = "cannot connect to \(configuration.redactedServers.joined(separator: ","))"
        let clientText = lastErrorText(for: status)
        var error = NatsError(.client, "\(context): \(clientText)", clientStatus: Int(status.rawValue))
        let text = clientText.lowercased()
        if status == NATS_CONNECTION_AUTH_FAILED || text.contains("authorization violation") || text.contains("authentication") {
            error.code = .authentication
        } else if configuration.credentials != nil,
            ["nkey user seed", "error opening file", "user jwt", "nkey"].contains(where: text.contains)
        {
            error.code = .credentialsFile
        } else if configuration.usesTLS, status == NATS_SSL_ERROR || ["ssl", "tls", "certificate", "handshake"].contains(where: text.contains) {
            error.code = .tlsHandshake
        } else if configuration.usesTLS, status == NATS_PROTOCOL_ERROR, text.contains("got ''") {
            // A server that refuses the client's certificate (or its absence) completes the TLS
            // 1.3 handshake and then closes the connection: nats.c sees no PONG.
            error.code = .tlsHandshake
            error.message += " (the server closed the connection after the TLS handshake: does it require a client certificate?)"
        }
        return error
    }

    /// Sets TLS and NKey/JWT credentials on `options`; the error when a file or setting is unusable.
    static func applySecurity(of configuration: NatsConfiguration, to options: OpaquePointer) -> NatsError? {
        if configuration.usesTLS {
            let tls = configuration.tls ?? NatsTLS()
            var status = natsOptions_SetSecure(options, true)
            guard status == NATS_OK else { return failure(status, .tlsConfiguration, "cannot set up TLS") }
            if let file = tls.trustedCertificatesFile {
                status = natsOptions_LoadCATrustedCertificates(options, file)
                guard status == NATS_OK else {
                    return failure(status, .tlsConfiguration, "cannot load the trusted certificates from '\(file)'")
                }
            }
            if let client = tls.clientCertificate {
                status = natsOptions_LoadCertificatesChain(options, client.certificateChainFile, client.privateKeyFile)
                guard status == NATS_OK else {
                    return failure(
                        status,
                        .tlsConfiguration,
                        "cannot load the client certificate '\(client.certificateChainFile)' with key '\(client.privateKeyFile)'"
                    )
                }
            }
            let expectedHostname: String?
            switch tls.hostnameVerification {
            case .serverURLHost:
                let hosts = Set(configuration.servers.compactMap { NatsServerAddress(url: $0)?.host })
                guard hosts.count == 1, let host = hosts.first else {
                    return NatsError(
                        .tlsConfiguration,
                        "the servers have different hosts (\(hosts.sorted().joined(separator: ", "))): set "
                            + "tls.hostnameVerification to .expected(name) with a name all their certificates carry"
                    )
                }
                // A bracketed IPv6 address is checked without its brackets.
                expectedHostname = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            case .expected(let name):
                expectedHostname = name
            case .disabled:
                expectedHostname = nil
            }
            if let expectedHostname {
                status = natsOptions_SetExpectedHostname(options, expectedHostname)
                guard status == NATS_OK else { return failure(status, .tlsConfiguration, "cannot set the expected hostname") }
            }
        }
        if let credentials = configuration.credentials {
            // nats.c reads these files only while connecting, where an unreadable one is just
            // another failed server: checked here, the error names the file.
            for file in credentials.files where !FileManager.default.isReadableFile(atPath: file) {
                return NatsError(.credentialsFile, "cannot read the credentials file '\(file)'")
            }
            let status: natsStatus
            switch credentials {
            case .credentialsFile(let file):
                status = natsOptions_SetUserCredentialsFromFiles(options, file, nil)
            case .jwtAndSeedFiles(let jwt, let seed):
                status = natsOptions_SetUserCredentialsFromFiles(options, jwt, seed)
            case .nkey(let publicKey, let seedFile):
                status = natsOptions_SetNKeyFromSeed(options, publicKey, seedFile)
            }
            guard status == NATS_OK else { return failure(status, .credentialsFile, "cannot use the credentials \(credentials)") }
        }
        return nil
    }

    /// Runs a blocking nats.c call on a thread of its own.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await onDedicatedThread(named: "courier.nats.blocking", body)
    }
}
