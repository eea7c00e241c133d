import WhyCache

/// The production datastore: the change log in MySQL or MariaDB tables,
/// shared by every machine of a fleet.
///
/// ```swift
/// let log = try MySQLDatastore(configuration: MySQLConfiguration(
///     endpoint: .tcp(host: "db.internal"), user: "whycache", password: secret,
///     database: "app", table: try MySQLIdentifier("flags_log")))
/// try await log.createIfMissing()          // once, e.g. from a deploy step
/// let cache = try SharedCache(statePath: "/dev/shm/flags.whycache", datastore: log)
/// ```
///
/// ## Tables
/// Four InnoDB tables named after ``MySQLConfiguration/table``, and a stored
/// procedure that appends one record in one call, created by
/// ``createIfMissing()`` (never implicitly) or by a database administrator
/// from `Schema/whycache_log.sql`. `docs/FORMAT.md` §4 describes every column
/// and parameter. The procedure is optional: without it appends are
/// multi-statement requests, also one round trip.
///
/// ## No record is ever skipped
/// Ids are not `AUTO_INCREMENT` values (those are taken at insert time, so a
/// later id can commit before an earlier one and a reader can jump the gap
/// for good). Each append transaction advances the one counter row (which
/// locks it and hands out the ids), inserts its records under those ids and
/// commits, holding the row lock from the moment it takes its ids until its
/// commit. Appends therefore commit in id order, and a reader that sees id
/// `n` sees every id below it. `docs/FORMAT.md` §4 gives the whole argument.
///
/// ## One round trip per append
/// An append is sent as one call of the procedure or one request: the
/// transaction's statements and its commit, so the counter row is held for
/// the server's own time only. The writer's read-your-writes read that
/// follows needs no round trip of its own: it is answered from what the
/// append wrote, or, beside other writers, from a page the append read in
/// the same round trip.
///
/// ## Single-key records are compact
/// When ``MySQLConfiguration/compactsSingleKeyRecords`` is on (the default),
/// appending a record that changes exactly one key deletes, in the same
/// transaction, the previous single-key record of that key. Repeated writes
/// of one key therefore keep one record in the log, not one per write. A
/// machine that had not read the deleted record reaches the key's newer value
/// when it reads the record that replaced it; until then that key shows the
/// value it had before (never an older one than the machine already showed).
///
/// ## Threads and connections
/// libmariadb blocks, so every statement runs on a Dispatch queue owned by
/// its connection, never on Swift's cooperative pool. A pool of up to
/// ``MySQLConfiguration/poolSize`` connections serves concurrent calls;
/// appends waiting at the same time share one transaction (group commit),
/// with up to ``MySQLConfiguration/maximumConcurrentAppends`` in flight, each
/// run by a worker that stays on its connection's thread while appends keep
/// coming.
///
/// ## Replicas
/// With ``MySQLConfiguration/replicas``, the reads of the log (the newest
/// id, pages, checkpoints) go to a replica and everything else to the
/// primary; see ``MySQLReplicaConfiguration``. A machine reading through
/// replicas lags at most by the replica's lag but never skips a record or
/// moves backwards, and a writer's read-your-writes step reads from the
/// primary when its replica does not hold the new record yet.
///
/// ## Failures
/// A server that is down, restarting or unreachable makes calls fail with
/// `DatastoreError/unavailable(reason:)`; broken connections are replaced on
/// the next call, so everything works again as soon as the server is back.
/// An append whose request was interrupted (the server died or stopped
/// answering while it ran) fails with
/// `DatastoreError/appendOutcomeUnknown(reason:)`: its records are then
/// either all in the log or none is, and it is never retried. Wrong credentials give
/// `DatastoreError/accessDenied(reason:)`; an unknown database
/// `DatastoreError/invalidConfiguration(reason:)`; missing tables
/// `DatastoreError/notADatastore(path:reason:)`. No message ever holds the password.
public final class MySQLDatastore: Datastore {
    /// The configuration the datastore was created with.
    public let configuration: MySQLConfiguration

    let pool: MySQLConnectionPool
    private let schema: MySQLSchema
    let log: MySQLLogTable
    let checkpoints: MySQLCheckpointTable
    /// Groups the appends of this process into transactions (internal, not
    /// private: tests watch its queue).
    let appender: MySQLAppender
    let router: MySQLReadRouter
    private let recentPage = MySQLRecentPage()

    /// Rows deleted per statement when history is removed.
    private static let deletionBatch = 5_000

    /// Creates a datastore; connects lazily, on first use.
    ///
    /// - Throws: `DatastoreError/invalidConfiguration(reason:)` for unusable values.
    public init(configuration: MySQLConfiguration) throws(DatastoreError) {
        try configuration.validate()
        self.configuration = configuration
        self.pool = MySQLConnectionPool(configuration: configuration)
        self.schema = MySQLSchema(table: configuration.table)
        self.log = MySQLLogTable(schema: schema, location: configuration.location, compactsSingleKeyRecords: configuration.compactsSingleKeyRecords)
        self.checkpoints = MySQLCheckpointTable(schema: schema, location: configuration.location)
        self.appender = MySQLAppender(
            pool: pool, log: log, recentPage: recentPage, maximumWorkers: configuration.maximumConcurrentAppends,
            gatherWait: configuration.appendGatherWait)
        self.router = MySQLReadRouter(primary: pool, configuration: configuration, log: log)
    }

    /// The SQL script that creates the tables of the log `table` (what
    /// ``createIfMissing()`` runs), commented, for a database administrator.
    public static func schemaScript(table: MySQLIdentifier) -> String {
        MySQLSchema(table: table).script
    }

    /// Closes the datastore's connections: idle ones at once, busy ones when
    /// their current statement ends. Every later call fails with
    /// `DatastoreError/invalidRequest(reason:)`. Closing twice does nothing.
    ///
    /// Dropping the last reference also closes every connection; `close()`
    /// does it at a moment of the caller's choosing, for example on shutdown.
    public func close() async {
        await pool.close()
        for replica in router.replicas { await replica.pool.close() }
    }

    /// What this datastore has sent to and read from its servers so far.
    public func statistics() -> MySQLDatastoreStatistics {
        var statistics = MySQLDatastoreStatistics(
            primaryStatements: pool.traffic.statements, primaryResultBytes: pool.traffic.resultBytes,
            replicaStatements: router.replicas.reduce(0) { $0 + $1.pool.traffic.statements },
            replicaResultBytes: router.replicas.reduce(0) { $0 + $1.pool.traffic.resultBytes })
        statistics.primaryRequests = pool.traffic.requests
        statistics.replicaRequests = router.replicas.reduce(0) { $0 + $1.pool.traffic.requests }
        return statistics
    }

    /// The pool of connections to the primary.
    var primaryPool: MySQLConnectionPool { pool }

    /// The pools of connections to the replicas, in order of preference.
    var replicaPools: [MySQLConnectionPool] { router.replicas.map(\.pool) }

    /// The state of each configured replica, in this datastore's order of
    /// preference (empty without replicas): which one reads go to, which
    /// ones were left and why.
    public func replicaStatus() -> [MySQLReplicaStatus] {
        router.replicaStatus()
    }

    // MARK: Datastore

    /// Creates the four tables, the counter row and the append procedure
    /// when they are missing, and checks the format version of existing
    /// ones.
    ///
    /// The user needs the `CREATE` privilege on the database for this call
    /// only, and `CREATE ROUTINE` for the procedure (without it the call
    /// succeeds and appends do without the procedure); everything else needs
    /// `SELECT`, `INSERT`, `UPDATE` and `DELETE`, and `EXECUTE` to use the
    /// procedure.
    public func createIfMissing() async throws(DatastoreError) {
        let (schema, log) = (schema, log)
        try await run("create tables") { connection throws(MySQLWorkError) in
            do throws(MySQLClientError) {
                for statement in schema.tableStatements { try connection.execute(statement) }
            } catch {
                throw .client(error)
            }
            _ = try log.meta(on: connection)
            do throws(MySQLClientError) {
                try connection.execute(schema.appendProcedureStatement)
            } catch {
                // A user who may not create routines still gets a working
                // log: appends are then multi-statement requests.
                guard Self.meansNoRoutinePrivilege(error) else { throw .client(error) }
            }
        }
        appender.procedureMayExist()
    }

    /// The newest id; from a replica when the datastore has replicas.
    public func latestUpdateID() async throws(DatastoreError) -> UInt64 {
        let log = log
        return try await router.read("read the newest id") { connection throws(MySQLWorkError) in
            let meta = try log.meta(on: connection)
            return .init(value: meta.lastUpdateID, meta: meta)
        }
    }

    /// The oldest retained id; from a replica when the datastore has replicas.
    public func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64 {
        let log = log
        return try await router.read("read the oldest id") { connection throws(MySQLWorkError) in
            let meta = try log.meta(on: connection)
            return .init(value: meta.removedThrough + 1, meta: meta)
        }
    }

    /// Records after `after`, read from a server (a replica when the
    /// datastore has replicas; see ``readPage(after:through:limits:)``).
    public func readRecords(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> [LogEntry] {
        try await readPageFromServer(after: after, through: through, limits: limits).entries
    }

    /// One page in one statement (see `MySQLLogTable`), with the log's
    /// newest id. Through a replica, the page comes from one that holds at
    /// least `after` (the caller's position), `through` when given (a
    /// caller that names the end of its range knows the log reached it: a
    /// change stream reading what its machine applied must not take a page
    /// that ends early for records compaction removed), and everything this
    /// datastore has seen; or else from the primary.
    ///
    /// The first page read after an append usually needs no round trip
    /// (`MySQLRecentPage`): when every id between `after` and the append's
    /// was handed to this datastore's own appends, their records are the
    /// page; when other writers' records lie in between, the append read the
    /// page after this datastore's reader position right after its commit,
    /// in the same round trip. That read is a cache's read-your-writes step:
    /// `update()` asks for pages, so it is the caller of this method.
    /// ``readRecords(after:through:limits:)`` always reads a server.
    public func readPage(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage {
        if let kept = recentPage.take(after: after, through: through, limits: limits, seen: router.seen) {
            router.noteObserved(kept.meta)
            recentPage.noteReaderPosition(kept.page.entries.last?.updateID ?? after)
            return kept.page
        }
        return try await readPageFromServer(after: after, through: through, limits: limits)
    }

    /// ``readPage(after:through:limits:)`` from a server. The page an
    /// append read before this read began will not answer a later read:
    /// this read is newer.
    private func readPageFromServer(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage {
        recentPage.drop()
        let log = log
        let page = try await router.read("read records", floor: max(after, through ?? after)) { connection throws(MySQLWorkError) in
            let read = try log.readPage(after: after, through: through, limits: limits, on: connection)
            let end = min(read.meta.lastUpdateID, through ?? .max)
            let page = LogPage(
                entries: read.entries, newestUpdateID: read.meta.lastUpdateID,
                reachesEnd: (read.entries.last?.updateID ?? after) >= end, precedingRecordChecksum: read.precedingRecordChecksum)
            return .init(value: page, meta: read.meta)
        }
        recentPage.noteReaderPosition(page.entries.last?.updateID ?? after)
        return page
    }

    public func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        for payload in payloads where payload.count > WhyCacheLimits.maximumRecordSize {
            throw .recordTooLarge(size: payload.count, maximum: WhyCacheLimits.maximumRecordSize)
        }
        guard !payloads.isEmpty else { return [] }
        let ids = try await appender.append(payloads)
        if let last = ids.last { router.noteAppended(through: last) }
        return ids
    }

    public func removeRecords(through updateID: UInt64) async throws(DatastoreError) {
        guard updateID > 0 else { return }
        let (log, checkpoints) = (log, checkpoints)
        do throws(MySQLPoolError<MySQLTransactionError>) {
            _ = try await pool.runTransaction(retryingBeforeCommit: true) { connection throws(MySQLWorkError) -> Bool in
                let covering = try checkpoints.latestUpdateID(on: connection)
                return try log.markRemoved(through: updateID, latestCheckpoint: covering, on: connection)
            }
        } catch {
            throw error.datastoreError(operation: "remove records", location: configuration.location)
        }
        // Readers learn about the removal from the counter row, committed
        // above, before any row disappears. The rows go in small batches; an
        // interrupted deletion is finished by the next call.
        let batch = Self.deletionBatch
        while try await run("remove records", { connection throws(MySQLWorkError) -> UInt64 in
            try log.deleteRemovedRows(limit: batch, on: connection)
        }) >= UInt64(batch) {}
    }

    public func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock {
        let log = log
        try await run("read the newest id") { connection throws(MySQLWorkError) in  // the tables must exist
            _ = try log.meta(on: connection)
        }
        let name = MySQLNamedLock.name(database: configuration.database, table: configuration.table, purpose: "maintenance")
        let acquired: MySQLNamedLock?
        do throws(MySQLClientError) {
            acquired = try await MySQLNamedLock.acquire(name, pool: pool)
        } catch {
            throw error.datastoreError(operation: "take the maintenance lock", location: configuration.location)
        }
        guard let lock = acquired else { throw .maintenanceLockHeld }
        return MySQLMaintenanceLock(lock: lock)
    }

    // MARK: Private

    /// Whether `error` refuses creating a stored routine for lack of a
    /// privilege (`CREATE ROUTINE`, or `SUPER` for a server with binary
    /// logging that requires it).
    private static func meansNoRoutinePrivilege(_ error: MySQLClientError) -> Bool {
        // ER_DBACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR,
        // ER_BINLOG_CREATE_ROUTINE_NEED_SUPER, ER_PROCACCESS_DENIED_ERROR.
        [1044, 1227, 1419, 1370].contains(error.code)
    }

    /// Runs `body` on a pooled connection to the primary, retrying on another connection when
    /// a stale one broke, and turns failures into `DatastoreError`s.
    @discardableResult
    func run<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (MySQLConnection) throws(MySQLWorkError) -> T
    ) async throws(DatastoreError) -> T {
        do throws(MySQLPoolError<MySQLWorkError>) {
            return try await pool.run(body)
        } catch {
            throw error.datastoreError(operation: operation, location: configuration.location)
        }
    }
}

/// What a ``MySQLDatastore`` has sent to and read from its servers since it
/// was created (``MySQLDatastore/statistics()``): the statements it had
/// executed, which the servers count in their `Questions` status variable,
/// and the bytes of the result values it read.
public struct MySQLDatastoreStatistics: Sendable, Hashable {
    /// Statements executed on the primary (appends, locks, maintenance, and
    /// reads when there is no usable replica, plus replica lag checks).
    public var primaryStatements: UInt64
    /// Bytes of result values read from the primary.
    public var primaryResultBytes: UInt64
    /// Statements executed on replicas.
    public var replicaStatements: UInt64
    /// Bytes of result values read from replicas.
    public var replicaResultBytes: UInt64
    /// Requests sent to the primary: round trips, each one statement or,
    /// for an append, one multi-statement query (connection setup excluded).
    public var primaryRequests: UInt64 = 0
    /// Requests sent to replicas (connection setup excluded).
    public var replicaRequests: UInt64 = 0

    /// Creates statistics.
    public init(primaryStatements: UInt64, primaryResultBytes: UInt64, replicaStatements: UInt64, replicaResultBytes: UInt64) {
        self.primaryStatements = primaryStatements
        self.primaryResultBytes = primaryResultBytes
        self.replicaStatements = replicaStatements
        self.replicaResultBytes = replicaResultBytes
    }
}
