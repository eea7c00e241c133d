import WhyCache

/// How a ``MySQLDatastore`` reaches its server and which tables hold its log.
///
/// ```swift
/// var configuration = MySQLConfiguration(
///     endpoint: .tcp(host: "db.internal", port: 3306),
///     user: "whycache", password: secret, database: "app", table: "flags_log")
/// configuration.tls = .verifyServer(certificateAuthorityPath: "/etc/ssl/db-ca.pem")
/// let log = try MySQLDatastore(configuration: configuration)
/// ```
///
/// The password is never logged and never appears in an error message or in
/// ``description``.
public struct MySQLConfiguration: Sendable, CustomStringConvertible {
    /// Where the server listens.
    public var endpoint: MySQLEndpoint

    /// The user to log in as.
    public var user: String

    /// The user's password. It is sent to the server only.
    public var password: String

    /// The database (schema) that holds the tables. It must exist; the
    /// datastore creates tables, never databases.
    public var database: String

    /// The name of the log table. The datastore's other tables are named after
    /// it (see `MySQLTableNames`).
    public var table: MySQLIdentifier

    /// How long to wait for a connection to be established.
    public var connectTimeout: Duration = .seconds(5)

    /// How long to wait for the server to answer one request. Rounded up to
    /// whole seconds.
    public var readTimeout: Duration = .seconds(30)

    /// How long to wait while sending one request. Rounded up to whole seconds.
    public var writeTimeout: Duration = .seconds(30)

    /// Transport security.
    public var tls: MySQLTLSConfiguration = .disabled

    /// The most connections the datastore keeps open at once (at least 1).
    /// Reads, appends and maintenance share them; a checkpoint writer or a
    /// maintenance lock holds one more of its own while it exists.
    public var poolSize: Int = 4

    /// The most append transactions in flight at once (at least 1, at most
    /// ``poolSize``; default 1). Appends waiting at the same time are grouped
    /// into one transaction (group commit). An append is one round trip, so
    /// a second transaction in flight only saves the client's short turnaround
    /// between two, and it halves the transactions, which costs the server
    /// more per record than it saves (docs/PERFORMANCE.md: 8 and 128
    /// concurrent writers of one process set 1.5 times as many keys per second
    /// with one in flight as with two).
    public var maximumConcurrentAppends: Int = 1

    /// How long an append worker may wait, after a transaction of several
    /// callers returns, for those callers to queue their next appends
    /// before it starts the next transaction (default 200 µs; zero turns
    /// the wait off).
    ///
    /// Without it, concurrent writers of one process split into two
    /// cohorts: the callers of one transaction are still applying their
    /// records when the next one leaves with the others, so each
    /// transaction carries half of them. The wait ends as soon as every
    /// caller of the returned transaction is back, and never lasts longer
    /// than half that transaction's own time; a lone writer never waits
    /// (docs/PERFORMANCE.md, "Gathering the next transaction").
    public var appendGatherWait: Duration = .microseconds(200)

    /// Whether a single-key record removes the previous single-key record for
    /// the same key (see ``MySQLDatastore`` and `docs/FORMAT.md` §4).
    public var compactsSingleKeyRecords: Bool = true

    /// Replicas of ``endpoint`` that serve the reads of the log (none by
    /// default: every read goes to ``endpoint``). ``endpoint`` stays the
    /// primary: it takes every write, lock and maintenance step. Replicas
    /// log in with the same user, password, database and TLS settings.
    public var replicas: MySQLReplicaConfiguration = .none

    /// Creates a configuration.
    public init(endpoint: MySQLEndpoint, user: String, password: String, database: String, table: MySQLIdentifier) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.table = table
    }

    /// The server, database and table, for messages (never the password).
    public var location: String {
        "\(database).\(table) at \(endpoint)"
    }

    /// The configuration without the password.
    public var description: String {
        let replicaList = replicas.endpoints.isEmpty ? "" : ", replicas: \(replicas.endpoints.map(\.description).joined(separator: ", "))"
        return "MySQLConfiguration(\(user)@\(location), password: <redacted>, tls: \(tls.mode), poolSize: \(poolSize)\(replicaList))"
    }

    /// The configuration of the connections to the replica at `endpoint`:
    /// the replica's address, timeouts and pool size, no replicas of its own.
    func forReplica(_ endpoint: MySQLEndpoint) -> MySQLConfiguration {
        var configuration = self
        configuration.endpoint = endpoint
        configuration.connectTimeout = replicas.timeout
        configuration.readTimeout = replicas.timeout
        configuration.writeTimeout = replicas.timeout
        configuration.poolSize = replicas.poolSize
        configuration.maximumConcurrentAppends = 1
        configuration.replicas = .none
        return configuration
    }

    /// Checks the values the server never sees.
    func validate() throws(DatastoreError) {
        guard !user.isEmpty else { throw .invalidConfiguration(reason: "the MySQL user is empty") }
        guard !database.isEmpty, database.utf8.count <= 64 else {
            throw .invalidConfiguration(reason: "the MySQL database name must have 1 to 64 bytes")
        }
        guard poolSize >= 1 else { throw .invalidConfiguration(reason: "poolSize must be at least 1, not \(poolSize)") }
        guard (1...poolSize).contains(maximumConcurrentAppends) else {
            throw .invalidConfiguration(reason: "maximumConcurrentAppends must be between 1 and poolSize (\(poolSize)), not \(maximumConcurrentAppends)")
        }
        guard appendGatherWait >= .zero, appendGatherWait <= .seconds(1) else {
            throw .invalidConfiguration(reason: "appendGatherWait must be between 0 and 1 s, not \(appendGatherWait)")
        }
        for (name, timeout) in [("connectTimeout", connectTimeout), ("readTimeout", readTimeout), ("writeTimeout", writeTimeout)] {
            guard timeout > .zero else { throw .invalidConfiguration(reason: "\(name) must be positive") }
        }
        try endpoint.validate()
        try tls.validate()
        try replicas.validate()
        guard !replicas.endpoints.contains(endpoint) else {
            throw .invalidConfiguration(reason: "the primary \(endpoint) is also listed as a replica")
        }
    }
}

/// Where a MySQL or MariaDB server listens.
public enum MySQLEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// A TCP address. `host` is a name or an address; `"localhost"` is sent
    /// over TCP too (use ``socket(path:)`` for the Unix socket).
    case tcp(host: String, port: Int = 3306)

    /// A Unix domain socket on this machine.
    case socket(path: String)

    /// `host:port` or the socket path.
    public var description: String {
        switch self {
        case .tcp(let host, let port): "\(host):\(port)"
        case .socket(let path): "unix:\(path)"
        }
    }

    enum ProtocolKind { case tcp, socket }

    var protocolKind: ProtocolKind {
        switch self {
        case .tcp: .tcp
        case .socket: .socket
        }
    }

    var host: String? {
        if case .tcp(let host, _) = self { return host }
        return nil
    }

    var port: Int {
        if case .tcp(_, let port) = self { return port }
        return 0
    }

    var socketPath: String? {
        if case .socket(let path) = self { return path }
        return nil
    }

    func validate() throws(DatastoreError) {
        switch self {
        case .tcp(let host, let port):
            guard !host.isEmpty else { throw .invalidConfiguration(reason: "the MySQL host is empty") }
            guard (1...65_535).contains(port) else { throw .invalidConfiguration(reason: "the MySQL port \(port) is not between 1 and 65535") }
        case .socket(let path):
            guard !path.isEmpty else { throw .invalidConfiguration(reason: "the MySQL socket path is empty") }
        }
    }
}

/// Transport security for the connections of a ``MySQLDatastore``.
public struct MySQLTLSConfiguration: Sendable, Hashable {
    /// How much TLS is required.
    public enum Mode: Sendable, Hashable {
        /// Plain connections (a trusted network, or a Unix socket).
        case disabled
        /// TLS is required, but the server's certificate is not verified.
        case required
        /// TLS is required and the server's certificate must be valid for the
        /// host and signed by a trusted authority.
        case verifyServer
    }

    /// How much TLS is required.
    public var mode: Mode

    /// A PEM file of the certificate authorities to trust (the system's when `nil`).
    public var certificateAuthorityPath: String?

    /// A PEM client certificate, for servers that require one.
    public var clientCertificatePath: String?

    /// The PEM private key of ``clientCertificatePath``.
    public var clientKeyPath: String?

    /// Creates TLS options.
    public init(mode: Mode, certificateAuthorityPath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil) {
        self.mode = mode
        self.certificateAuthorityPath = certificateAuthorityPath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
    }

    /// No TLS.
    public static let disabled = MySQLTLSConfiguration(mode: .disabled)

    /// TLS with the server's certificate verified against `certificateAuthorityPath`
    /// (or the system's authorities).
    public static func verifyServer(certificateAuthorityPath: String? = nil) -> MySQLTLSConfiguration {
        MySQLTLSConfiguration(mode: .verifyServer, certificateAuthorityPath: certificateAuthorityPath)
    }

    func validate() throws(DatastoreError) {
        guard (clientCertificatePath == nil) == (clientKeyPath == nil) else {
            throw .invalidConfiguration(reason: "a TLS client certificate needs its key, and a key its certificate")
        }
        if mode == .disabled, certificateAuthorityPath != nil || clientCertificatePath != nil {
            throw .invalidConfiguration(reason: "TLS files are configured but TLS is disabled")
        }
    }
}
