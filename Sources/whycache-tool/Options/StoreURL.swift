import Foundation
import WhyCache
import WhyCacheMySQL

/// The datastore named by `--store`: a parsed `file://` or `mysql://` URL.
///
/// ```text
/// file:///absolute/directory
/// mysql://USER@HOST[:PORT]/DATABASE[?table=NAME&tls=MODE&tls-ca=PATH&socket=PATH&replica=HOST:PORT…&replica-lag=SECONDS&connect-timeout=SECONDS]
/// ```
///
/// A MySQL URL never carries the password (command lines are visible to
/// every user through `ps`): a URL with one is refused, and the message
/// that says so does not repeat it. The password comes from
/// `--password-file` or `WHYCACHE_MYSQL_PASSWORD` (see ``StoreOptions``).
///
/// Each `replica=HOST[:PORT]` names a replica of the server that the log's
/// reads go to (``MySQLReplicaConfiguration``); `replica-lag=SECONDS` (more
/// than 0, up to a day) sets how far behind the primary a replica may be
/// before reads leave it. `connect-timeout=SECONDS` (more than 0, up to an
/// hour) bounds each connection attempt, the server's greeting included
/// (``MySQLConfiguration/connectTimeout``, 5 s by default): a busy server
/// may take longer to greet a new connection.
enum StoreURL: Equatable {
    /// A file datastore in `directory` (an absolute path).
    case file(directory: String)
    /// A MySQL/MariaDB datastore; everything but the password.
    case mysql(MySQLStoreAddress)

    /// The default log table of a `mysql://` URL without `?table=`.
    static let defaultTable = "whycache_log"

    /// Parses `text`.
    ///
    /// - Throws: ``StoreURLError`` naming what is wrong (never echoing a password).
    init(parsing text: String) throws(StoreURLError) {
        guard let colon = text.firstIndex(of: ":") else { throw .unsupportedScheme }
        let scheme = text[..<colon].lowercased()
        let rest = text[text.index(after: colon)...]
        guard rest.hasPrefix("//") else { throw .malformed("expected \(scheme):// followed by the location") }
        switch scheme {
        case "file":
            self = .file(directory: try Self.fileDirectory(String(rest.dropFirst(2))))
        case "mysql":
            self = .mysql(try MySQLStoreAddress(parsing: String(rest.dropFirst(2))))
        default:
            throw .unsupportedScheme
        }
    }

    /// The directory of `file://` + `location`: an optional `localhost`
    /// host, then an absolute path (percent-decoded).
    private static func fileDirectory(_ location: String) throws(StoreURLError) -> String {
        var path = Substring(location)
        if path.hasPrefix("localhost/") { path = path.dropFirst("localhost".count) }
        guard path.hasPrefix("/") else {
            throw .malformed("a file URL needs an absolute path: file:///absolute/directory")
        }
        guard !path.contains("?"), !path.contains("#") else { throw .malformed("a file URL takes no query or fragment") }
        guard let decoded = String(path).removingPercentEncoding else { throw .malformed("bad percent-encoding in the path") }
        var directory = decoded
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory
    }

    /// The URL for messages; a MySQL URL as given (it holds no password).
    var description: String {
        switch self {
        case .file(let directory): "file://\(directory)"
        case .mysql(let address): address.description
        }
    }
}

/// Where a MySQL log is, from a `mysql://` URL.
struct MySQLStoreAddress: Equatable, CustomStringConvertible {
    var user: String
    var endpoint: MySQLEndpoint
    var database: String
    /// The `table` parameter, if the URL has one.
    var table: String?
    var tls: MySQLTLSConfiguration.Mode
    var certificateAuthorityPath: String?
    /// The `replica` parameters, in order.
    var replicas: [MySQLEndpoint] = []
    /// The `replica-lag` parameter, if the URL has one.
    var maximumReplicaLag: Duration?
    /// The `connect-timeout` parameter, if the URL has one.
    var connectTimeout: Duration?

    /// The largest `replica-lag`, in seconds: a day. A replica a day behind
    /// serves nothing a fleet can use; the bound keeps the value far from
    /// what a `Duration` of milliseconds holds.
    static let longestReplicaLag: Double = 86_400

    /// The largest `connect-timeout`, in seconds: an hour.
    static let longestConnectTimeout: Double = 3_600

    /// Parses what follows `mysql://`.
    init(parsing location: String) throws(StoreURLError) {
        guard let at = location.lastIndex(of: "@") else {
            throw .malformed("a MySQL URL names its user: mysql://USER@HOST[:PORT]/DATABASE?table=NAME")
        }
        let userInfo = location[..<at]
        // Refused before anything else is looked at, so that no later
        // message can contain the password.
        guard !userInfo.contains(":") else { throw .passwordInURL }
        guard let user = String(userInfo).removingPercentEncoding, !user.isEmpty else { throw .malformed("the user is empty or badly percent-encoded") }
        let afterUser = location[location.index(after: at)...]
        let (hostPart, pathAndQuery) = afterUser.firstIndex(of: "/").map { (afterUser[..<$0], afterUser[afterUser.index(after: $0)...]) }
            ?? (afterUser, "")
        let (pathPart, queryPart) = pathAndQuery.firstIndex(of: "?").map { (pathAndQuery[..<$0], pathAndQuery[pathAndQuery.index(after: $0)...]) }
            ?? (pathAndQuery, "")
        guard let database = String(pathPart).removingPercentEncoding, !database.isEmpty, !database.contains("/") else {
            throw .malformed("a MySQL URL names its database: mysql://USER@HOST[:PORT]/DATABASE")
        }
        var table: String?
        var tls = MySQLTLSConfiguration.Mode.disabled
        var certificateAuthorityPath: String?
        var socket: String?
        for parameter in queryPart.split(separator: "&") where !parameter.isEmpty {
            // Empty pieces are kept: `=x` has an empty name, `table=` an empty value.
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard !pair[0].isEmpty else { throw .malformed("the query parameter \"\(parameter)\" has no name") }
            guard pair.count == 2, let value = String(pair[1]).removingPercentEncoding, !value.isEmpty else {
                throw .malformed("the query parameter \(pair[0]) needs a value")
            }
            switch pair[0] {
            case "table": table = value
            case "socket": socket = value
            case "tls-ca": certificateAuthorityPath = value
            case "replica": replicas.append(try Self.tcpEndpoint(value))
            case "replica-lag": maximumReplicaLag = try Self.duration(value, of: "replica-lag", upTo: Self.longestReplicaLag)
            case "connect-timeout": connectTimeout = try Self.duration(value, of: "connect-timeout", upTo: Self.longestConnectTimeout)
            case "tls":
                switch value {
                case "disabled": tls = .disabled
                case "required": tls = .required
                case "verify-server": tls = .verifyServer
                default: throw .malformed("tls must be disabled, required or verify-server, not \(value)")
                }
            default:
                throw .malformed("unknown query parameter \(pair[0]) (known: table, tls, tls-ca, socket, replica, replica-lag, connect-timeout)")
            }
        }
        self.user = user
        if let socket {
            self.endpoint = .socket(path: socket)
        } else {
            self.endpoint = try Self.tcpEndpoint(String(hostPart))
        }
        self.database = database
        self.table = table
        self.tls = tls
        self.certificateAuthorityPath = certificateAuthorityPath
    }

    /// The value of the parameter `name`: a positive number of seconds up to
    /// `longest`, rounded up to whole milliseconds. Bounded before it becomes
    /// milliseconds: a longer number once trapped the conversion (a fuzz
    /// finding).
    private static func duration(_ value: String, of name: String, upTo longest: Double) throws(StoreURLError) -> Duration {
        guard let seconds = Double(value), seconds > 0, seconds <= longest else {
            throw .malformed("\(name) must be a positive number of seconds up to \(Int(longest)), not \(value)")
        }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    /// `HOST[:PORT]`, with `[v6]` brackets allowed; port 3306 by default.
    private static func tcpEndpoint(_ text: String) throws(StoreURLError) -> MySQLEndpoint {
        var host = Substring(text)
        var port = 3306
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .malformed("unclosed [ in the host") }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { throw .malformed("bad port") }
                port = value
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]) else { throw .malformed("bad port") }
            port = value
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw .malformed("a MySQL URL names its host: mysql://USER@HOST[:PORT]/DATABASE") }
        guard (1...65_535).contains(port) else { throw .malformed("the port must be between 1 and 65535") }
        return .tcp(host: String(host), port: port)
    }

    /// The configuration for this address with `password`, for the URL's
    /// table or else `defaultTable`.
    ///
    /// - Throws: ``DatastoreError/invalidConfiguration(reason:)`` for a bad table name.
    func configuration(password: String, defaultTable: String = StoreURL.defaultTable) throws(DatastoreError) -> MySQLConfiguration {
        var configuration = MySQLConfiguration(
            endpoint: endpoint, user: user, password: password, database: database,
            table: try MySQLIdentifier(table ?? defaultTable))
        configuration.tls = MySQLTLSConfiguration(mode: tls, certificateAuthorityPath: certificateAuthorityPath)
        configuration.replicas.endpoints = replicas
        if let maximumReplicaLag { configuration.replicas.maximumLag = maximumReplicaLag }
        if let connectTimeout { configuration.connectTimeout = connectTimeout }
        return configuration
    }

    var description: String {
        let replicaList = replicas.map { "&replica=\($0)" }.joined()
        return "mysql://\(user)@\(endpoint)/\(database)?table=\(table ?? StoreURL.defaultTable)\(replicaList)"
    }
}

/// Why a `--store` URL was refused (a usage error: exit status 2).
enum StoreURLError: Error, Equatable, CustomStringConvertible {
    /// Neither `file://` nor `mysql://`.
    case unsupportedScheme
    /// The URL holds a password (which this message never repeats).
    case passwordInURL
    /// Anything else, with what was expected.
    case malformed(String)

    var description: String {
        switch self {
        case .unsupportedScheme:
            "--store must be file:///absolute/directory or mysql://USER@HOST[:PORT]/DATABASE?table=NAME"
        case .passwordInURL:
            "--store must not hold a password; put it in \(StoreOptions.passwordVariable) or a --password-file"
        case .malformed(let reason):
            "bad --store URL: \(reason)"
        }
    }
}
