/// TLS for a NATS connection: which certificate authorities to trust, the client certificate
/// for mutual TLS, and how the server's name is checked.
///
/// Files are PEM and are read when the client connects; a file that cannot be read or parsed
/// fails `connect()` with ``NatsError/Code/tlsConfiguration``, a server whose certificate is
/// not trusted (or does not carry the expected name) with ``NatsError/Code/tlsHandshake``.
///
/// ```swift
/// var configuration = try NatsConfiguration(url: "tls://nats.internal:4222")
/// configuration.tls = NatsTLS(
///     trustedCertificatesFile: "/etc/courier/ca.pem",
///     clientCertificate: .init(certificateChainFile: "/etc/courier/client.pem", privateKeyFile: "/etc/courier/client.key")
/// )
/// ```
public struct NatsTLS: Sendable, Hashable {
    /// A certificate and its private key, which the client presents when the server asks for
    /// one (`verify: true` in nats-server's `tls` block).
    public struct ClientCertificate: Sendable, Hashable {
        /// The client's certificate first, then any intermediates (PEM).
        public var certificateChainFile: String
        /// The certificate's private key (PEM, unencrypted).
        public var privateKeyFile: String

        /// A client certificate read from these files.
        public init(certificateChainFile: String, privateKeyFile: String) {
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
        }
    }

    /// How the name in the server's certificate is checked.
    ///
    /// nats.c checks only the certificate chain unless it is given a name to expect, so Courier
    /// gives it one unless told not to.
    public enum HostnameVerification: Sendable, Hashable {
        /// The certificate must carry the host of the server URLs (`nats.internal` for
        /// `tls://nats.internal:4222`). Several servers must then share that host; servers with
        /// different hosts need ``expected(_:)`` with a name every one of their certificates carries.
        case serverURLHost
        /// The certificate must carry this name, whichever server answers.
        case expected(String)
        /// Only the certificate chain is checked, not the name: any certificate the trusted
        /// authorities signed is accepted. For servers reached by an address their certificates
        /// do not name; nats.c supports this explicitly (it is its behaviour without an expected name).
        case disabled
    }

    /// The certificate authorities that sign the servers' certificates (PEM, several may be
    /// concatenated); nil trusts the system's default store.
    public var trustedCertificatesFile: String?
    /// The certificate presented for mutual TLS; nil presents none.
    public var clientCertificate: ClientCertificate?
    /// How the server's certificate name is checked (default: against the URL's host).
    public var hostnameVerification: HostnameVerification

    /// TLS trusting `trustedCertificatesFile` (nil: the system's store), presenting
    /// `clientCertificate` when given.
    public init(
        trustedCertificatesFile: String? = nil,
        clientCertificate: ClientCertificate? = nil,
        hostnameVerification: HostnameVerification = .serverURLHost
    ) {
        self.trustedCertificatesFile = trustedCertificatesFile
        self.clientCertificate = clientCertificate
        self.hostnameVerification = hostnameVerification
    }
}

/// How the client proves who it is with NATS's decentralised authentication, besides the user,
/// password and token of ``NatsConfiguration``.
///
/// Only file paths are kept here: nats.c reads the JWT and seed at each connect (and reconnect)
/// and wipes its copy of the seed after signing, so no secret is held in a Swift value, and
/// printing a configuration shows where the credentials are, never what they are.
public enum NatsCredentials: Sendable, Hashable {
    /// A `.creds` file as `nsc generate creds` writes it: the user JWT and the user's NKey seed.
    /// For servers in operator mode (JWT accounts).
    case credentialsFile(String)
    /// The user JWT and the NKey seed in two files.
    case jwtAndSeedFiles(jwt: String, seed: String)
    /// An NKey the server lists in its `authorization { users = [{nkey: …}] }`: its public key
    /// (`U…`) and the file holding its seed (`SU…`), with which the server's nonce is signed.
    case nkey(publicKey: String, seedFile: String)

    /// The files nats.c will read, to check before connecting that each can be read.
    var files: [String] {
        switch self {
        case .credentialsFile(let file): [file]
        case .jwtAndSeedFiles(let jwt, let seed): [jwt, seed]
        case .nkey(_, let seedFile): [seedFile]
        }
    }
}

extension NatsCredentials: CustomStringConvertible {
    /// The kind of credentials and their files' paths; never what the files hold.
    public var description: String {
        switch self {
        case .credentialsFile(let file): "credentialsFile(\(file))"
        case .jwtAndSeedFiles(let jwt, let seed): "jwtAndSeedFiles(jwt: \(jwt), seed: \(seed))"
        case .nkey(let publicKey, let seedFile): "nkey(publicKey: \(publicKey), seedFile: \(seedFile))"
        }
    }
}
