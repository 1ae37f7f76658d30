import Courier
import CourierChildProcess
import Foundation

/// Throw-away TLS material for the servers the TLS tests start: a CA (`ca.crt`) and a server
/// certificate it signed (`server.crt`, key `server.key`) for `localhost` and 127.0.0.1.
enum TestCertificates {
    /// Waits for openssl without blocking a thread of Swift's cooperative pool (two on this
    /// machine: a blocked one stalls every test running alongside).
    static func make(in directory: URL) async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=Courier Test CA" 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
            printf "subjectAltName=DNS:localhost,IP:127.0.0.1" > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile san.ext 2>/dev/null
            """
        try await ChildProcess.run("/bin/bash", ["-c", script], directory: directory.path)
    }
}
