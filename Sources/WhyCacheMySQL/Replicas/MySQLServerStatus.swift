import WhyCache

/// The global status counters and the process id file of one server of a
/// ``MySQLDatastore`` (the primary or a replica), for benchmarks that measure
/// what a fleet costs the servers (`whycache-tool bench fleet`).
package struct MySQLServerStatus: Sendable {
    /// Where the server listens.
    package var endpoint: MySQLEndpoint
    /// Whether it is the primary.
    package var isPrimary: Bool
    /// The counters asked for, by their names in upper case (`QUESTIONS`).
    package var counters: [String: UInt64]
    /// The server's `pid_file` (a path on the server's machine).
    package var pidFile: String?
}

extension MySQLDatastore {
    /// Reads the global status counters `names` (for example `Questions`,
    /// `Bytes_sent`) and the `pid_file` of the primary and of every replica,
    /// one statement per server.
    package func serverStatus(_ names: [String]) async throws(DatastoreError) -> [MySQLServerStatus] {
        let wanted = names.map { $0.uppercased() } + ["PID_FILE"]
        let list = Array(repeating: "?", count: wanted.count).joined(separator: ", ")
        let sql = """
            SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN (\(list))
            UNION ALL SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'PID_FILE'
            """
        let parameters = wanted.map { MySQLValue.bytes(Array($0.utf8)) }
        var statuses: [MySQLServerStatus] = []
        for (pool, isPrimary) in [(primaryPool, true)] + replicaPools.map({ ($0, false) }) {
            let rows: [(String, String)]
            do throws(MySQLPoolError<MySQLWorkError>) {
                rows = try await pool.run { connection throws(MySQLWorkError) -> [(String, String)] in
                    var rows: [(String, String)] = []
                    try connection.query(sql, parameters, columns: [.bytes, .bytes]) { row in
                        rows.append((String(decoding: row[0].bytesValue ?? [], as: UTF8.self), String(decoding: row[1].bytesValue ?? [], as: UTF8.self)))
                    }
                    return rows
                }
            } catch {
                throw error.datastoreError(operation: "read the server status", location: pool.configuration.location)
            }
            var status = MySQLServerStatus(endpoint: pool.configuration.endpoint, isPrimary: isPrimary, counters: [:], pidFile: nil)
            for (name, value) in rows {
                if name == "PID_FILE" { status.pidFile = value } else { status.counters[name] = UInt64(value) }
            }
            statuses.append(status)
        }
        return statuses
    }
}
