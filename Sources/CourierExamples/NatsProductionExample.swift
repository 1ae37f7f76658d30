import Courier
import CourierNATS
import NIOCore

// README: "NATS" (TLS, credentials and key-value).
func natsProductionExample() async throws {
    var configuration = try NatsConfiguration(url: "tls://nats-1.internal:4222,tls://nats-2.internal:4222")
    configuration.tls = NatsTLS(
        trustedCertificatesFile: "/etc/courier/nats-ca.pem",
        clientCertificate: .init(certificateChainFile: "/etc/courier/client.pem", privateKeyFile: "/etc/courier/client.key"),
        hostnameVerification: .expected("nats.internal")   // the name both servers' certificates carry
    )
    configuration.credentials = .credentialsFile("/etc/courier/orders.creds")   // user JWT + seed, from nsc
    // or an NKey: .nkey(publicKey: "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", seedFile: "/etc/courier/orders.nk")
    let broker = NatsBroker(configuration: configuration, middlewares: [TelemetryMiddleware()])

    do {
        try await broker.transport.connect()
    } catch let error as NatsError where error.code == .tlsHandshake || error.code == .credentialsFile {
        // Which it was is in the code; the message names the file or nats.c's TLS error.
        throw error
    }

    // Key-value: read, write, compare-and-set, delete.
    try await broker.declareKeyValue(bucket: "feature-flags", history: 5)
    let revision = try await broker.putValue(ByteBuffer(string: "on"), forKey: "dark-mode", inBucket: "feature-flags")
    if let flag = try await broker.value(forKey: "dark-mode", inBucket: "feature-flags") {
        print(String(buffer: flag.value), flag.revision == revision)   // "on true"
    }
    // Only if nobody wrote it since: otherwise NatsError code .keyValueConflict.
    try await broker.updateValue(ByteBuffer(string: "off"), forKey: "dark-mode", inBucket: "feature-flags", expectedRevision: revision)
    try await broker.deleteValue(forKey: "dark-mode", inBucket: "feature-flags")
    _ = try await broker.value(forKey: "dark-mode", inBucket: "feature-flags")   // nil: deleted
    await broker.transport.close()
}
