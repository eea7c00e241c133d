import CMariaDB

/// A server-side prepared statement: SQL with `?` placeholders, sent once and
/// then executed with values bound in the binary protocol, so no value is
/// ever spliced into SQL text.
///
/// A statement belongs to one ``MySQLConnection`` and is used only on its
/// queue. This file, `MySQLConnection.swift` and `MySQLBatch.swift` are the
/// only places that touch libmariadb's pointers.
final class MySQLStatement {
    /// The libmariadb statement handle; owned, closed by `close()`.
    private let handle: UnsafeMutablePointer<MYSQL_STMT>

    /// The number of `?` placeholders.
    let parameterCount: Int

    /// Where executions and result bytes are counted.
    private let traffic: MySQLTraffic

    private init(handle: UnsafeMutablePointer<MYSQL_STMT>, parameterCount: Int, traffic: MySQLTraffic) {
        self.handle = handle
        self.parameterCount = parameterCount
        self.traffic = traffic
    }

    /// Prepares `sql` on `connection`.
    ///
    /// - Precondition (unsafe): `connection` is an open handle used by the
    ///   calling thread only, and it outlives the statement.
    static func prepare(
        _ sql: String, on connection: UnsafeMutablePointer<MYSQL>, traffic: MySQLTraffic
    ) throws(MySQLClientError) -> MySQLStatement {
        guard let handle = mysql_stmt_init(connection) else {
            throw MySQLClientError(code: mysql_errno(connection), sqlState: "HY000", message: String(cString: mysql_error(connection)))
        }
        let status = sql.withCString { mysql_stmt_prepare(handle, $0, UInt(sql.utf8.count)) }
        guard status == 0 else {
            let error = Self.error(of: handle)
            mysql_stmt_close(handle)
            throw error
        }
        return MySQLStatement(handle: handle, parameterCount: Int(mysql_stmt_param_count(handle)), traffic: traffic)
    }

    /// Frees the statement on the server and in the client.
    func close() {
        mysql_stmt_close(handle)
    }

    /// Executes a statement that returns no rows and returns the number of
    /// rows it changed (with `CLIENT_FOUND_ROWS`: the rows it matched).
    @discardableResult
    func execute(_ parameters: [MySQLValue]) throws(MySQLClientError) -> UInt64 {
        traffic.countRequest()
        traffic.countStatement()
        try withBoundParameters(parameters) { () throws(MySQLClientError) in
            guard mysql_stmt_execute(handle) == 0 else { throw Self.error(of: handle) }
        }
        let affected = mysql_stmt_affected_rows(handle)
        // (my_ulonglong)-1 means "not a row-changing statement".
        return affected == UInt64.max ? 0 : affected
    }

    /// The `AUTO_INCREMENT` value the last executed `INSERT` generated.
    var insertID: UInt64 {
        mysql_stmt_insert_id(handle)
    }

    /// Executes a query and calls `row` with each result row, in order, read
    /// one at a time from the server (only one row is held in memory).
    ///
    /// `columns` says how to read each column; it must match the statement's
    /// result columns in number.
    func query(
        _ parameters: [MySQLValue], columns: [MySQLColumnKind], row: ([MySQLValue]) throws(MySQLClientError) -> Void
    ) throws(MySQLClientError) {
        traffic.countRequest()
        traffic.countStatement()
        try withBoundParameters(parameters) { () throws(MySQLClientError) in
            guard mysql_stmt_execute(handle) == 0 else { throw Self.error(of: handle) }
        }
        defer { mysql_stmt_free_result(handle) }
        try fetchRows(columns: columns, row: row)
    }

    /// Executes a `CALL` of a stored procedure and returns the rows of each
    /// result set it returned, in order (the call's own final status is not
    /// one of them), each read with `columns[index]`.
    ///
    /// - Throws: ``MySQLBatchFailure`` whose `completed` holds the result
    ///   sets read before the error: a procedure that failed after it
    ///   returned some result sets had run the statements before them. Every
    ///   result is read before this returns or throws, unless the error
    ///   broke the connection.
    func call(_ parameters: [MySQLValue], columns: [Int: [MySQLColumnKind]]) throws(MySQLBatchFailure) -> [MySQLBatchResult] {
        traffic.countRequest()
        traffic.countStatement()
        var results: [MySQLBatchResult] = []
        do throws(MySQLClientError) {
            try withBoundParameters(parameters) { () throws(MySQLClientError) in
                guard mysql_stmt_execute(handle) == 0 else { throw Self.error(of: handle) }
            }
        } catch {
            throw MySQLBatchFailure(completed: results, error: error)
        }
        while true {
            if mysql_stmt_field_count(handle) > 0 {
                var rows: [[MySQLValue]] = []
                do throws(MySQLClientError) {
                    guard let kinds = columns[results.count] else {
                        throw .unexpectedResult("a procedure returned more result sets than expected")
                    }
                    try fetchRows(columns: kinds) { rows.append($0) }
                } catch {
                    mysql_stmt_free_result(handle)
                    throw MySQLBatchFailure(completed: results, error: error)
                }
                results.append(MySQLBatchResult(affectedRows: 0, insertID: 0, rows: rows))
            }
            mysql_stmt_free_result(handle)
            let next = mysql_stmt_next_result(handle)
            if next == -1 { return results }
            guard next == 0 else { throw MySQLBatchFailure(completed: results, error: Self.error(of: handle)) }
        }
    }

    /// Reads the rows of the current result set, each as `columns` says,
    /// and calls `row` with each, in order.
    private func fetchRows(columns: [MySQLColumnKind], row: ([MySQLValue]) throws(MySQLClientError) -> Void) throws(MySQLClientError) {
        guard Int(mysql_stmt_field_count(handle)) == columns.count else {
            throw .unexpectedResult("a statement returned \(mysql_stmt_field_count(handle)) columns, expected \(columns.count)")
        }
        let results = ResultBindings(columns: columns)
        defer { results.deallocate() }
        guard mysql_stmt_bind_result(handle, results.binds) == 0 else { throw Self.error(of: handle) }
        while true {
            let status = mysql_stmt_fetch(handle)
            if status == MYSQL_NO_DATA { return }
            guard status == 0 || status == MYSQL_DATA_TRUNCATED else { throw Self.error(of: handle) }
            let values = try results.values(of: handle)
            traffic.countResultBytes(values.reduce(0) { $0 + $1.byteCount })
            try row(values)
        }
    }

    // MARK: Private

    /// Binds `parameters` to the statement for the duration of `body`.
    ///
    /// Every parameter's bytes are copied into one allocation that lives until
    /// `body` returns, which is what libmariadb requires of the memory a
    /// `MYSQL_BIND` points to.
    private func withBoundParameters(
        _ parameters: [MySQLValue], _ body: () throws(MySQLClientError) -> Void
    ) throws(MySQLClientError) {
        guard parameters.count == parameterCount else {
            throw .unexpectedResult("a statement takes \(parameterCount) parameters, got \(parameters.count)")
        }
        guard parameterCount > 0 else { return try body() }
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: parameterCount)
        binds.initialize(repeating: MYSQL_BIND(), count: parameterCount)
        // Integers and lengths first (8-byte aligned), then every byte string.
        let byteCount = parameters.reduce(0) { total, value in total + (value.bytesValue?.count ?? 0) }
        let scalars = UnsafeMutablePointer<UInt64>.allocate(capacity: parameterCount)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: parameterCount)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: parameterCount)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(1, byteCount), alignment: 8)
        defer {
            binds.deallocate()
            scalars.deallocate()
            lengths.deallocate()
            nulls.deallocate()
            storage.deallocate()
        }
        var offset = 0
        for (index, value) in parameters.enumerated() {
            nulls[index] = 0
            lengths[index] = 0
            binds[index].is_null = nulls + index
            binds[index].length = lengths + index
            switch value {
            case .null:
                nulls[index] = 1
                binds[index].buffer_type = MYSQL_TYPE_NULL
            case .unsigned(let number):
                scalars[index] = number
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = UnsafeMutableRawPointer(scalars + index)
                binds[index].is_unsigned = 1
            case .bytes(let bytes):
                let start = storage + offset
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress { start.copyMemory(from: base, byteCount: source.count) }
                }
                offset += bytes.count
                lengths[index] = UInt(bytes.count)
                binds[index].buffer_type = MYSQL_TYPE_BLOB
                binds[index].buffer = start
                binds[index].buffer_length = UInt(bytes.count)
            }
        }
        guard mysql_stmt_bind_param(handle, binds) == 0 else { throw Self.error(of: handle) }
        try body()
    }

    /// The error `statement` reported last.
    private static func error(of statement: UnsafeMutablePointer<MYSQL_STMT>) -> MySQLClientError {
        MySQLClientError(
            code: mysql_stmt_errno(statement),
            sqlState: String(cString: mysql_stmt_sqlstate(statement)),
            message: String(cString: mysql_stmt_error(statement))
        )
    }
}

/// The `MYSQL_BIND` array (and the memory it points to) that receives one
/// result row.
///
/// Integers land in 8-byte slots. Byte columns are bound with no buffer, so
/// that a fetch only reports their length (as a truncation); each one is then
/// read whole with `mysql_stmt_fetch_column` into an array of that length.
private struct ResultBindings {
    let columns: [MySQLColumnKind]
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    let scalars: UnsafeMutablePointer<UInt64>
    let lengths: UnsafeMutablePointer<UInt>
    let nulls: UnsafeMutablePointer<my_bool>
    let errors: UnsafeMutablePointer<my_bool>

    init(columns: [MySQLColumnKind]) {
        self.columns = columns
        let count = max(1, columns.count)
        binds = .allocate(capacity: count)
        binds.initialize(repeating: MYSQL_BIND(), count: count)
        scalars = .allocate(capacity: count)
        scalars.initialize(repeating: 0, count: count)
        lengths = .allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        nulls = .allocate(capacity: count)
        nulls.initialize(repeating: 0, count: count)
        errors = .allocate(capacity: count)
        errors.initialize(repeating: 0, count: count)
        for (index, kind) in columns.enumerated() {
            binds[index].length = lengths + index
            binds[index].is_null = nulls + index
            binds[index].error = errors + index
            switch kind {
            case .unsigned:
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = UnsafeMutableRawPointer(scalars + index)
                binds[index].buffer_length = 8
                binds[index].is_unsigned = 1
            case .bytes:
                binds[index].buffer_type = MYSQL_TYPE_BLOB
                binds[index].buffer = nil
                binds[index].buffer_length = 0
            }
        }
    }

    func deallocate() {
        binds.deallocate()
        scalars.deallocate()
        lengths.deallocate()
        nulls.deallocate()
        errors.deallocate()
    }

    /// The values of the row just fetched.
    ///
    /// - Precondition (unsafe): `statement` just returned a row from
    ///   `mysql_stmt_fetch` with these bindings.
    func values(of statement: UnsafeMutablePointer<MYSQL_STMT>) throws(MySQLClientError) -> [MySQLValue] {
        var values: [MySQLValue] = []
        values.reserveCapacity(columns.count)
        for (index, kind) in columns.enumerated() {
            if nulls[index] != 0 {
                values.append(.null)
                continue
            }
            switch kind {
            case .unsigned:
                values.append(.unsigned(scalars[index]))
            case .bytes:
                let length = Int(lengths[index])
                guard length > 0 else {
                    values.append(.bytes([]))
                    continue
                }
                let bytes = try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized throws(MySQLClientError) in
                    var fetched = MYSQL_BIND()
                    var fetchedLength: UInt = 0
                    let status = withUnsafeMutablePointer(to: &fetchedLength) { lengthPointer in
                        fetched.buffer_type = MYSQL_TYPE_BLOB
                        fetched.buffer = UnsafeMutableRawPointer(buffer.baseAddress)
                        fetched.buffer_length = UInt(length)
                        fetched.length = lengthPointer
                        return mysql_stmt_fetch_column(statement, &fetched, UInt32(index), 0)
                    }
                    guard status == 0, Int(fetchedLength) == length else {
                        throw MySQLClientError.unexpectedResult("column \(index) could not be read whole (\(fetchedLength) of \(length) bytes)")
                    }
                    initialized = length
                }
                values.append(.bytes(bytes))
            }
        }
        return values
    }
}
