import WhyCache

/// The append of one record in one call of the append procedure
/// (``MySQLSchema/appendProcedureStatement``): a prepared `CALL` whose
/// values travel as bound parameters, and whose statements the server has
/// already parsed. It does what an ``MySQLAppendRequest`` of one record
/// does — advance the counter row, insert the record under the id it handed
/// out, delete the older single-key record of its key, commit — then returns
/// the id and, when asked for, the page after a position (docs/FORMAT.md
/// §4.3). The server parses the procedure once per connection and the
/// payload travels as bytes, not as a hex literal twice its size.
///
/// **Failures.** A statement that fails inside the procedure rolls the
/// transaction back before the error reaches the client (its exit handler),
/// so a server error before the id came back means nothing was written; the
/// client sends `ROLLBACK` all the same, so that no pooled connection keeps
/// a transaction whatever the procedure's definition. An error after the id
/// came back is the page read's: the record is committed. A broken
/// connection leaves the outcome unknown. A procedure that is missing
/// (tables of an earlier version) or that the user may not execute fails
/// before anything runs (``meansProcedureUnavailable(_:)``).
struct MySQLAppendCall {
    /// What the call appends: one record of one part.
    let plan: MySQLAppendPlan

    /// The position after which the page is read, or `nil` for no page.
    let pageAfter: UInt64?

    private let log: MySQLLogTable

    /// Whether `plan` is one record of one part, which the procedure takes.
    static func fits(_ plan: MySQLAppendPlan) -> Bool {
        plan.count == 1 && plan.rows.count == 1 && plan.rows[0].part == 0
    }

    /// A call appending what `plan` says to `log` (which ``fits(_:)``) and,
    /// when `pageAfter` is given, reading the page after it.
    init(plan: MySQLAppendPlan, log: MySQLLogTable, pageAfter: UInt64?) {
        self.plan = plan
        self.log = log
        self.pageAfter = pageAfter
    }

    /// Whether `error` says that the procedure is missing or may not be
    /// executed: then nothing ran, and the append is sent as a request.
    static func meansProcedureUnavailable(_ error: MySQLTransactionError) -> Bool {
        guard case .beforeCommit(.client(let cause)) = error else { return false }
        // ER_SP_DOES_NOT_EXIST, ER_PROCACCESS_DENIED_ERROR.
        return cause.code == 1305 || cause.code == 1370
    }

    /// The `CALL` statement, prepared once per connection.
    private var sql: String {
        "CALL \(log.schema.appendProcedure)(?, ?, ?, ?, ?, ?)"
    }

    /// Calls the procedure on `connection` and reads its answer.
    ///
    /// - Throws: as ``MySQLAppendRequest/run(on:)``.
    func run(on connection: MySQLConnection) throws(MySQLTransactionError) -> MySQLAppendOutcome {
        let row = plan.rows[0]
        let parameters: [MySQLValue] = [
            .unsigned(row.payloadSize), .unsigned(row.checksum),
            row.singleKey.map { .unsigned($0.hash) } ?? .null, row.singleKey.map { .bytes($0.key) } ?? .null,
            .bytes(Array(row.bytes)), pageAfter.map { .unsigned($0) } ?? .null,
        ]
        let results: [MySQLBatchResult]
        do throws(MySQLBatchFailure) {
            let statement: MySQLStatement
            do throws(MySQLClientError) {
                statement = try connection.statement(sql)
            } catch {
                throw MySQLBatchFailure(completed: [], error: error)
            }
            results = try statement.call(parameters, columns: [0: [.unsigned], 1: MySQLLogTable.smallPageColumns])
        } catch {
            if error.completed.isEmpty, error.error.comesFromServer, !error.error.breaksConnection {
                // The server refused the call, or the procedure's handler
                // rolled back: nothing was written.
                connection.rollBackAfterFailure()
                throw .beforeCommit(.client(error.error))
            }
            // The id comes back right after the commit: a failure after it
            // (result index 0 read) is the page read's.
            results = try MySQLAppendOutcome.recover(from: error, commitIndex: 0, connection: connection)
        }
        guard let last = results.first?.rows.first?.first?.unsignedValue else {
            connection.invalidate()
            throw .outcomeUnknown(.unexpectedResult("the append procedure did not return the record's id"))
        }
        // 0: the counter row was not advanced (and the procedure rolled back).
        let ids = try MySQLAppendOutcome.ids(last: last, matched: last > 0 ? 1 : 0, plan: plan, log: log, on: connection)
        let page = results.count > 1 ? results[1].rows : nil
        return MySQLAppendOutcome(ids: ids, page: MySQLAppendOutcome.page(after: pageAfter, rows: page, last: ids.last, log: log))
    }
}
