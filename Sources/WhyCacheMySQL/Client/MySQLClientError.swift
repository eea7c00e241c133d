import WhyCache

/// An error reported by libmariadb or the server, with its numeric code.
///
/// The connection layer throws it; ``MySQLDatastore`` turns it into a
/// ``DatastoreError`` at its boundary (``datastoreError(operation:location:)``),
/// the one place where codes are given meaning.
struct MySQLClientError: Error, Sendable, Hashable {
    /// The client (2000–2999) or server (1000–1999, 4000+) error number.
    var code: UInt32

    /// The SQLSTATE, when the server sent one.
    var sqlState: String

    /// The message from libmariadb or the server. It never holds the password:
    /// neither reports it.
    var message: String

    /// Whether the connection is unusable after this error, so it must be
    /// closed rather than returned to the pool.
    var breaksConnection: Bool {
        Self.connectionCodes.contains(code) || code >= 2000 && code < 3000
    }

    /// Whether the server reported the error (codes 1000–1999 and from 3000
    /// on), rather than libmariadb (2000–2999) or the datastore (0).
    var comesFromServer: Bool {
        code >= 1000 && !(2000..<3000).contains(code)
    }

    /// Whether the server is down, unreachable, overloaded or went away, so
    /// that retrying later may succeed.
    var isTransient: Bool {
        breaksConnection || Self.transientServerCodes.contains(code)
    }

    /// Server errors after which the server closes the connection.
    private static let connectionCodes: Set<UInt32> = [
        1040,  // ER_CON_COUNT_ERROR: too many connections
        1053,  // ER_SERVER_SHUTDOWN
        1152,  // ER_ABORTING_CONNECTION
        1158, 1159, 1160, 1161,  // ER_NET_*: read/write errors and timeouts
        1927,  // ER_CONNECTION_KILLED
        4031,  // ER_CLIENT_INTERACTION_TIMEOUT
    ]

    /// Server errors that end a statement or transaction but leave the
    /// connection usable, and that a later attempt may not meet.
    private static let transientServerCodes: Set<UInt32> = [
        1205,  // ER_LOCK_WAIT_TIMEOUT
        1213,  // ER_LOCK_DEADLOCK
        1290,  // ER_OPTION_PREVENTS_STATEMENT (read-only server, e.g. during a failover)
        1836,  // ER_READ_ONLY_MODE
        1969,  // ER_STATEMENT_TIMEOUT
    ]

    /// The client error a connection reports when a statement's result has
    /// an unexpected shape (a programming error in the datastore's SQL).
    static func unexpectedResult(_ message: String) -> MySQLClientError {
        MySQLClientError(code: 0, sqlState: "HY000", message: message)
    }

    /// The ``DatastoreError`` that tells a caller what went wrong.
    ///
    /// - Parameters:
    ///   - operation: What the datastore was doing ("append", "read records").
    ///   - location: The server and table, as the user configured them (never
    ///     the password).
    func datastoreError(operation: String, location: String) -> DatastoreError {
        let detail = "\(message) (MySQL error \(code))"
        if self == MySQLConnectionPool.closedError {
            return .invalidRequest(reason: "\(location): \(operation) after close()")
        }
        switch code {
        case 1044, 1045, 1142, 1143, 1227, 1698:
            // Access denied to the database, the user/password, a table or a command.
            return .accessDenied(reason: "\(location): \(detail)")
        case 2026:
            // TLS could not be set up: certificates, verification or a server without TLS.
            return .invalidConfiguration(reason: "\(location): \(detail); check the TLS settings")
        case 1049:
            return .invalidConfiguration(reason: "\(location): \(detail); create the database or fix the configuration")
        case 1146:
            return .notADatastore(path: location, reason: "\(detail); create the tables with createIfMissing() or `whycache-tool init-store`")
        default:
            if isTransient { return .unavailable(reason: "\(operation) on \(location): \(detail)") }
            return .requestFailed(operation: operation, reason: "\(location): \(detail)")
        }
    }
}
