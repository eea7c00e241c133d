import WhyCache

/// A server-wide named lock (`GET_LOCK`) held on a connection of its own.
///
/// The server releases the lock when that connection ends for any reason —
/// `release()`, the holder dropping it, the holder's process dying, or the
/// network failing — so a crashed holder never blocks anyone for longer
/// than it takes the server to notice the closed connection.
final class MySQLNamedLock: Sendable {
    /// The lock's name (at most 64 characters).
    let name: String

    /// The connection that holds the lock; `nil` once released.
    private let connection: Locked<MySQLConnection?>

    private init(name: String, connection: MySQLConnection) {
        self.name = name
        self.connection = Locked(connection)
    }

    /// The name of the lock `purpose` of the log `table` in `database`:
    /// "whycache:" and a hash of both names, so that logs never share a lock.
    static func name(database: String, table: MySQLIdentifier, purpose: String) -> String {
        let hash = StableHash.fnv1a(Array("\(database).\(table.name)".utf8))
        let hex = String(hash, radix: 16)
        return "whycache:" + String(repeating: "0", count: 16 - hex.count) + hex + ":" + purpose
    }

    /// Takes the lock without waiting.
    ///
    /// - Returns: the lock, or `nil` when someone else holds it.
    static func acquire(_ name: String, pool: MySQLConnectionPool) async throws(MySQLClientError) -> MySQLNamedLock? {
        let connection = try await pool.openDedicatedConnection()
        do throws(MySQLClientError) {
            let acquired = try await connection.run { connection throws(MySQLClientError) -> Bool in
                var result: UInt64?
                try connection.statement("SELECT GET_LOCK(?, 0)").query([.bytes(Array(name.utf8))], columns: [.unsigned]) {
                    row throws(MySQLClientError) in result = row[0].unsignedValue
                }
                return result == 1
            }
            guard acquired else {
                await connection.close()
                return nil
            }
            return MySQLNamedLock(name: name, connection: connection)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Whether nobody holds the lock `name` (asked on `connection`).
    static func isFree(_ name: String, on connection: MySQLConnection) throws(MySQLWorkError) -> Bool {
        var result: UInt64?
        try connection.query("SELECT IS_FREE_LOCK(?)", [.bytes(Array(name.utf8))], columns: [.unsigned]) { row in result = row[0].unsignedValue }
        return result == 1
    }

    /// Whether the lock is still held: the connection is open and unbroken.
    var isHeld: Bool {
        connection.withLock { connection in connection.map { !$0.isBroken } ?? false }
    }

    /// Releases the lock and closes its connection. Releasing twice does nothing.
    func release() async {
        guard let connection = connection.withLock({ held -> MySQLConnection? in
            defer { held = nil }
            return held
        }) else { return }
        let name = name
        _ = try? await connection.run { connection throws(MySQLClientError) in
            try connection.statement("SELECT RELEASE_LOCK(?)").query([.bytes(Array(name.utf8))], columns: [.unsigned]) { _ throws(MySQLClientError) in }
        }
        await connection.close()
    }
}

/// The maintenance lock of a ``MySQLDatastore``: a ``MySQLNamedLock``.
struct MySQLMaintenanceLock: DatastoreMaintenanceLock {
    let lock: MySQLNamedLock

    func release() async {
        await lock.release()
    }
}
