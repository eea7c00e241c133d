import CMariaDB
import WhyCache

import Glibc

/// One connection to a MySQL or MariaDB server, with the prepared statements
/// made on it.
///
/// Every call blocks until the server answers, so a connection is only used
/// inside ``run(_:)``, which runs on the connection's own serial Dispatch
/// queue — never on Swift's cooperative thread pool — and which also ensures
/// that one thread at a time uses the `MYSQL` handle, as libmariadb requires.
///
/// Once an error has broken the connection (``MySQLClientError/breaksConnection``)
/// it is marked ``isBroken`` and must be closed rather than reused.
final class MySQLConnection: @unchecked Sendable {
    // @unchecked Sendable: the handle and the statement cache are touched only
    // on `queue` (a serial queue), which orders every access.

    /// The serial queue on which every use of the handle happens.
    private let queue: BlockingIOQueue

    /// The libmariadb connection handle; owned, closed in `close()`.
    private let handle: UnsafeMutablePointer<MYSQL>

    /// Prepared statements, by SQL text, made on this connection.
    private var statements: [String: MySQLStatement] = [:]

    /// Whether an error broke the connection.
    private(set) var isBroken = false

    /// Whether `close()` ran.
    private var isClosed = false

    /// Where the statements of this connection are counted.
    private let traffic: MySQLTraffic

    /// libmariadb's one-time global initialization, which is not thread-safe
    /// and must run before the first `mysql_init` of any thread.
    private static let libraryInitialized: Bool = mysql_server_init(0, nil, nil) == 0

    private init(handle: UnsafeMutablePointer<MYSQL>, queue: BlockingIOQueue, traffic: MySQLTraffic) {
        self.handle = handle
        self.queue = queue
        self.traffic = traffic
    }

    deinit {
        if !isClosed {
            closeHandle()
        }
    }

    /// Opens a connection as `configuration` says, on a queue of its own,
    /// counting its statements in `traffic`.
    static func open(_ configuration: MySQLConfiguration, traffic: MySQLTraffic) async throws(MySQLClientError) -> MySQLConnection {
        let queue = BlockingIOQueue(label: "WhyCache.MySQL.connection", concurrent: false)
        return try await queue.run { () throws(MySQLClientError) -> MySQLConnection in
            try connectBlocking(configuration, queue: queue, traffic: traffic)
        }
    }

    /// Runs `body` with this connection on its queue and returns its result.
    ///
    /// An error that breaks the connection marks it broken.
    func run<T: Sendable, Failure: MySQLClientFailure>(
        _ body: @escaping @Sendable (MySQLConnection) throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await queue.run { () throws(Failure) -> T in
            do throws(Failure) {
                return try body(self)
            } catch {
                if error.clientError.breaksConnection { self.isBroken = true }
                throw error
            }
        }
    }

    /// Closes the connection (politely, telling the server) on its queue.
    func close() async {
        await queue.run { () in
            if !self.isClosed { self.closeHandle() }
        }
    }

    // MARK: Blocking operations (call only inside `run`)

    /// Runs one SQL statement that takes no parameters and returns no rows
    /// (`BEGIN`, `COMMIT`, DDL), through the text protocol.
    func execute(_ sql: String) throws(MySQLClientError) {
        traffic.countRequest()
        traffic.countStatement()
        let status = sql.withCString { mysql_real_query(handle, $0, UInt(sql.utf8.count)) }
        guard status == 0 else { throw lastError() }
        // A statement without a result set still may return one (it does not
        // here); consume it so that the connection is ready for the next one.
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
    }

    /// Ends the transaction that a failed request left open: `ROLLBACK`, or,
    /// when that fails too, marks the connection broken, so that the pool
    /// closes it (which makes the server roll back). Either way no pooled
    /// connection keeps a transaction open.
    func rollBackAfterFailure() {
        do throws(MySQLClientError) {
            try execute("ROLLBACK")
        } catch {
            isBroken = true
        }
    }

    /// Runs `text`, one or more SQL statements separated by semicolons, as
    /// one request (one round trip), and returns what each statement
    /// returned, in order.
    ///
    /// The server runs the statements one after another and stops at the
    /// first that fails; they are never sent without their values, so
    /// `text` must contain only numbers and literals the datastore wrote
    /// itself (hex literals for bytes, validated identifiers for names).
    ///
    /// - Parameter columns: How to read the rows of the statement at each
    ///   index that returns a result set.
    /// - Throws: ``MySQLBatchFailure`` naming the statement that failed,
    ///   with the results of those before it. Every result is read before
    ///   this returns or throws, so the connection is ready for the next
    ///   request unless the error broke it.
    func runBatch(_ text: [UInt8], columns: [Int: [MySQLColumnKind]]) throws(MySQLBatchFailure) -> [MySQLBatchResult] {
        var results: [MySQLBatchResult] = []
        traffic.countRequest()
        let status = text.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { mysql_real_query(handle, $0.baseAddress, UInt($0.count)) }
        }
        guard status == 0 else { throw MySQLBatchFailure(completed: results, error: lastError()) }
        while true {
            traffic.countStatement()
            let index = results.count
            let result: MySQLBatchResult
            do throws(MySQLClientError) {
                result = try readResult(columns: columns[index])
            } catch {
                discardRemainingResults()
                throw MySQLBatchFailure(completed: results, error: error)
            }
            results.append(result)
            let next = mysql_next_result(handle)
            if next == -1 { return results }
            guard next == 0 else { throw MySQLBatchFailure(completed: results, error: lastError()) }
        }
    }

    /// Reads and drops the results of the statements after the current one
    /// (after a result this connection could not read), so that the
    /// connection is ready for the next request; when that fails, marks it
    /// broken.
    private func discardRemainingResults() {
        while mysql_more_results(handle) != 0 {
            guard mysql_next_result(handle) == 0 else {
                if lastError().breaksConnection { isBroken = true }
                return
            }
            if let result = mysql_store_result(handle) { mysql_free_result(result) }
        }
    }

    /// Reads the current result of a text query: a result set, read with
    /// `columns`, or the counts of a statement that returned none.
    private func readResult(columns: [MySQLColumnKind]?) throws(MySQLClientError) -> MySQLBatchResult {
        guard mysql_field_count(handle) > 0 else {
            let affected = mysql_affected_rows(handle)
            // (my_ulonglong)-1 means "not a row-changing statement".
            return MySQLBatchResult(affectedRows: affected == UInt64.max ? 0 : affected, insertID: mysql_insert_id(handle), rows: [])
        }
        guard let result = mysql_store_result(handle) else { throw lastError() }
        defer { mysql_free_result(result) }
        guard let columns else {
            throw .unexpectedResult("a statement of a batch returned rows where none were expected")
        }
        let rows = try MySQLTextRows.read(result, columns: columns)
        traffic.countResultBytes(rows.reduce(0) { $0 + $1.reduce(0) { $0 + $1.byteCount } })
        return MySQLBatchResult(affectedRows: 0, insertID: 0, rows: rows)
    }

    /// Whether the server has closed this idle connection, or sent it
    /// something nobody asked for (an error before closing it): then a
    /// request sent on it would fail, and it must be closed rather than used.
    ///
    /// Looks at the socket without waiting and without a round trip. A
    /// connection used only through ``run(_:)`` has nothing to read between
    /// requests, so anything readable — data, end of file, an error — means
    /// the server is gone (it restarted, was killed, or timed the connection
    /// out). A server that died without closing (a lost host) is not seen
    /// here; a request then times out.
    func hasBeenClosedByServer() -> Bool {
        let socket = mysql_get_socket(handle)
        guard socket >= 0, socket <= my_socket(Int32.max) else { return true }
        var descriptor = pollfd(fd: Int32(socket), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    /// Marks the connection broken: it is closed when it goes back to the
    /// pool, never lent again.
    func invalidate() {
        isBroken = true
    }

    /// The prepared statement for `sql`, prepared on first use.
    func statement(_ sql: String) throws(MySQLClientError) -> MySQLStatement {
        if let statement = statements[sql] { return statement }
        let statement = try MySQLStatement.prepare(sql, on: handle, traffic: traffic)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` inside a transaction: commits when it returns, rolls back
    /// when it throws.
    ///
    /// - Throws: ``MySQLTransactionError/commitFailed(_:)`` when everything
    ///   before the commit worked but the commit itself failed, so that the
    ///   caller can tell "not written" from "outcome unknown".
    func transaction<T>(_ body: () throws(MySQLWorkError) -> T) throws(MySQLTransactionError) -> T {
        do throws(MySQLClientError) {
            try execute("START TRANSACTION")
        } catch {
            throw .beforeCommit(.client(error))
        }
        let result: T
        do throws(MySQLWorkError) {
            result = try body()
        } catch {
            if !error.clientError.breaksConnection { rollBackAfterFailure() }
            throw .beforeCommit(error)
        }
        do throws(MySQLClientError) {
            try execute("COMMIT")
        } catch {
            if !error.breaksConnection { rollBackAfterFailure() }
            throw .commitFailed(error)
        }
        return result
    }

    /// The error the connection reported last.
    func lastError() -> MySQLClientError {
        MySQLClientError(
            code: mysql_errno(handle),
            sqlState: String(cString: mysql_sqlstate(handle)),
            message: String(cString: mysql_error(handle))
        )
    }

    // MARK: Private

    /// Connects on the current thread, which must be `queue`'s.
    private static func connectBlocking(
        _ configuration: MySQLConfiguration, queue: BlockingIOQueue, traffic: MySQLTraffic
    ) throws(MySQLClientError) -> MySQLConnection {
        guard libraryInitialized else {
            throw MySQLClientError(code: 2000, sqlState: "HY000", message: "libmariadb failed to initialize")
        }
        guard let handle = mysql_init(nil) else {
            throw MySQLClientError(code: 2008, sqlState: "HY000", message: "libmariadb could not allocate a connection")
        }
        let connection = MySQLConnection(handle: handle, queue: queue, traffic: traffic)
        try connection.applyOptions(configuration)
        let connected = configuration.password.withCString { password in
            mysql_real_connect(
                handle,
                configuration.endpoint.host,
                configuration.user,
                password,
                configuration.database,
                UInt32(configuration.endpoint.port),
                configuration.endpoint.socketPath,
                // Multi-statement text queries carry an append in one round
                // trip (``runBatch(_:columns:)``); every value in them is a
                // number or a hex literal the datastore wrote itself.
                UInt(CLIENT_FOUND_ROWS) | UInt(CLIENT_MULTI_STATEMENTS)
            )
        }
        guard connected != nil else {
            let error = connection.lastError()
            connection.isBroken = true
            throw error
        }
        // libmariadb may fall back to a plain connection when the server has
        // no TLS, even when asked to enforce it: check that TLS is in use.
        if configuration.tls.mode != .disabled, mysql_get_ssl_cipher(handle) == nil {
            connection.isBroken = true
            throw MySQLClientError(code: 2026, sqlState: "HY000", message: "TLS is required, but the server did not use it for the connection")
        }
        return connection
    }

    /// Sets the connection options (timeouts, TLS, session setup) before connecting.
    private func applyOptions(_ configuration: MySQLConfiguration) throws(MySQLClientError) {
        func set(_ option: mysql_option, _ value: UnsafeRawPointer?) throws(MySQLClientError) {
            guard mysql_options(handle, option, value) == 0 else {
                throw MySQLClientError(code: 2000, sqlState: "HY000", message: "libmariadb rejected connection option \(option.rawValue)")
            }
        }
        func set(_ option: mysql_option, seconds: Duration) throws(MySQLClientError) {
            var value = UInt32(clamping: max(1, seconds.components.seconds))
            try set(option, &value)
        }
        func set(_ option: mysql_option, flag: Bool) throws(MySQLClientError) {
            var value: my_bool = flag ? 1 : 0
            try set(option, &value)
        }
        func set(_ option: mysql_option, text: String) throws(MySQLClientError) {
            let status = text.withCString { mysql_options(handle, option, $0) }
            guard status == 0 else {
                throw MySQLClientError(code: 2000, sqlState: "HY000", message: "libmariadb rejected connection option \(option.rawValue)")
            }
        }
        try set(MYSQL_OPT_CONNECT_TIMEOUT, seconds: configuration.connectTimeout)
        try set(MYSQL_OPT_READ_TIMEOUT, seconds: configuration.readTimeout)
        try set(MYSQL_OPT_WRITE_TIMEOUT, seconds: configuration.writeTimeout)
        try set(MYSQL_OPT_LOCAL_INFILE, flag: false)
        // READ COMMITTED: each statement reads the newest committed rows and
        // takes no gap locks; docs/FORMAT.md §4 argues why appends stay in order.
        try set(MYSQL_INIT_COMMAND, text: "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        // Strict mode whatever the server's default: a NULL or out-of-range
        // value fails its statement instead of being stored as 0. The append
        // request relies on it (docs/FORMAT.md §4.3).
        try set(MYSQL_INIT_COMMAND, text: """
            SET SESSION sql_mode = IF(@@SESSION.sql_mode = '', 'STRICT_TRANS_TABLES', CONCAT(@@SESSION.sql_mode, ',STRICT_TRANS_TABLES'))
            """)
        switch configuration.endpoint.protocolKind {
        case .tcp:
            var value = UInt32(MYSQL_PROTOCOL_TCP.rawValue)
            try set(MYSQL_OPT_PROTOCOL, &value)
        case .socket:
            var value = UInt32(MYSQL_PROTOCOL_SOCKET.rawValue)
            try set(MYSQL_OPT_PROTOCOL, &value)
        }
        let tls = configuration.tls
        switch tls.mode {
        case .disabled:
            break
        case .required, .verifyServer:
            try set(MYSQL_OPT_SSL_ENFORCE, flag: true)
            try set(MYSQL_OPT_SSL_VERIFY_SERVER_CERT, flag: tls.mode == .verifyServer)
            if let path = tls.certificateAuthorityPath { try set(MYSQL_OPT_SSL_CA, text: path) }
            if let path = tls.clientCertificatePath { try set(MYSQL_OPT_SSL_CERT, text: path) }
            if let path = tls.clientKeyPath { try set(MYSQL_OPT_SSL_KEY, text: path) }
        }
    }

    /// Closes every statement and the handle. Runs on `queue` (or in deinit,
    /// when no one else can hold the connection).
    private func closeHandle() {
        for statement in statements.values { statement.close() }
        statements.removeAll()
        mysql_close(handle)
        isClosed = true
    }
}
