import WhyCache

/// Statements run with their errors as ``MySQLWorkError``: what the
/// datastore's table types use.
extension MySQLConnection {
    /// Runs the prepared statement `sql` with `parameters` and calls `row`
    /// with each result row (see ``MySQLStatement/query(_:columns:row:)``).
    func query(
        _ sql: String, _ parameters: [MySQLValue], columns: [MySQLColumnKind], row: ([MySQLValue]) -> Void
    ) throws(MySQLWorkError) {
        do throws(MySQLClientError) {
            try statement(sql).query(parameters, columns: columns) { values throws(MySQLClientError) in row(values) }
        } catch {
            throw .client(error)
        }
    }

    /// Runs the prepared statement `sql`, which returns no rows, with
    /// `parameters`, and returns the rows it changed.
    @discardableResult
    func execute(_ sql: String, _ parameters: [MySQLValue]) throws(MySQLWorkError) -> UInt64 {
        do throws(MySQLClientError) {
            return try statement(sql).execute(parameters)
        } catch {
            throw .client(error)
        }
    }
}

/// How a transaction failed: before the commit (nothing was written), in
/// the commit itself, or in a request whose answer does not say whether it
/// committed.
enum MySQLTransactionError: Error {
    /// The transaction failed before `COMMIT` was sent, or before it ran;
    /// it was rolled back (explicitly, or by the server when the connection
    /// broke).
    case beforeCommit(MySQLWorkError)

    /// `COMMIT` failed. When the error broke the connection, the server may
    /// or may not have committed.
    case commitFailed(MySQLClientError)

    /// A request that carried the `COMMIT` together with the statements
    /// before it (``MySQLAppendRequest``) broke off, or answered in a way
    /// that does not tell whether it committed: the transaction is either
    /// committed whole or not at all, and the client cannot know which.
    case outcomeUnknown(MySQLClientError)

    /// The underlying client error.
    var clientError: MySQLClientError {
        switch self {
        case .beforeCommit(let error): error.clientError
        case .commitFailed(let error): error
        case .outcomeUnknown(let error): error
        }
    }
}
