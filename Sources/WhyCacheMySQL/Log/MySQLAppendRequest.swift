import WhyCache

/// An append in one request — one round trip — and how to read its answer:
/// the statements of docs/FORMAT.md §4.3 and, when asked for, the page read
/// after the commit, sent as one multi-statement text query:
///
/// ```sql
/// START TRANSACTION;
/// UPDATE <log>_meta SET last_update_id = LAST_INSERT_ID(last_update_id + k) WHERE id = 1 AND format_version = 1;
/// INSERT INTO <log> (…) VALUES
///   ((SELECT m.last_update_id - <back> FROM <log>_meta AS m WHERE m.id = 1 AND m.format_version = 1
///     AND m.last_update_id = LAST_INSERT_ID()), <part>, …, x'<bytes>'),
///   (LAST_INSERT_ID() - <back>, <part>, …, x'<bytes>'), …;   -- one row per part
/// DELETE old FROM <log> AS old JOIN <log> AS head … WHERE head.update_id < LAST_INSERT_ID() - (k - 1) …;
///                                                        -- per 64 replaced keys, none without single-key records
/// COMMIT;
/// SELECT … the page after `pageAfter` (MySQLLogTable.smallPageSQL) …;  -- only when asked for
/// ```
///
/// Appends of one single-part record go through the append procedure
/// instead (``MySQLAppendCall``) when the tables have it.
///
/// The server runs the statements one after another without waiting for
/// the client, so the counter row is locked for the server's own time
/// only — no network round trip falls inside the lock.
///
/// **Ids come from the counter row, not from the client.** The client does
/// not know the ids before the answer, so every row's id is computed by the
/// server from the value the same transaction's `UPDATE` gave the counter
/// row (which it locked) and `LAST_INSERT_ID()`: `last - back`. If the
/// `UPDATE` matched no row (the counter row is missing or of another format
/// version), `LAST_INSERT_ID()` still holds an older value, so the first
/// row's id is read from the counter row on the condition that it stands at
/// `LAST_INSERT_ID()`: otherwise it is `NULL`, which the session's strict
/// mode refuses, and the request stops before its `DELETE` and `COMMIT`
/// (and is rolled back). So no row is written, and nothing deleted, under
/// an id the counter did not hand out to this transaction. The client
/// learns the ids from the `UPDATE`'s answer (`LAST_INSERT_ID(expr)` is
/// sent back as its insert id).
///
/// **Failures** (``MySQLAppendOutcome/recover(from:commitIndex:connection:)``).
/// The server stops at the first statement that fails:
/// - before `COMMIT` (a lock wait timeout, a read-only server, a missing
///   table): the transaction is open on the connection, so it is rolled
///   back (``MySQLConnection/rollBackAfterFailure()``) and nothing was
///   written;
/// - `COMMIT` itself, with the connection intact: rolled back too, and
///   reported as a failed commit (the server did not commit);
/// - the page read after `COMMIT`: the append is committed; only the page
///   is missing;
/// - a broken connection (the server died, a timeout), or an answer this
///   client cannot read: the request was sent whole, the commit with it,
///   and the answer does not say how far the server got, so the outcome is
///   unknown (``MySQLTransactionError/outcomeUnknown(_:)``), never retried.
///   The transaction is all or nothing, so either every record is in the
///   log under its id, or none is.
struct MySQLAppendRequest {
    /// The most payload bytes an append in one request carries. The query is
    /// about twice as long (hex), which stays as far below the servers'
    /// default `max_allowed_packet` (16 MiB; 4 MiB on old servers) as the
    /// statements of a transaction do (at most 4 MiB each). Larger appends
    /// are a transaction of statements (``MySQLLogTable/append(_:on:)``).
    static let maximumPayloadBytes = 1 << 20

    /// The statements before the `DELETE`s: `START TRANSACTION`, the
    /// counter `UPDATE` (index 1) and the `INSERT` (index 2).
    private static let counterIndex = 1
    private static let insertIndex = 2

    /// What the append writes.
    let plan: MySQLAppendPlan

    /// The position after which the page is read, or `nil` for no page.
    let pageAfter: UInt64?

    /// The query.
    let text: [UInt8]

    /// The index of the `COMMIT` statement; the page read, if any, follows it.
    private let commitIndex: Int

    private let log: MySQLLogTable

    /// Whether `plan` fits in one request (see ``maximumPayloadBytes``).
    static func fits(_ plan: MySQLAppendPlan) -> Bool {
        plan.payloadBytes <= maximumPayloadBytes
    }

    /// The request that appends what `plan` says to `log` and, when
    /// `pageAfter` is given, reads the page after it once it has committed.
    init(plan: MySQLAppendPlan, log: MySQLLogTable, pageAfter: UInt64?) {
        self.plan = plan
        self.log = log
        self.pageAfter = pageAfter
        let schema = log.schema
        let version = MySQLSchema.formatVersion
        // The counter row, as every statement after the UPDATE reads it.
        let counterRow = "FROM \(schema.meta) AS m WHERE m.id = 1 AND m.format_version = \(version)"
        var text = MySQLQueryText(capacity: 2_048 + plan.rows.reduce(0) { $0 + 160 + 2 * ($1.bytes.count + ($1.singleKey?.key.count ?? 0)) })
        text.append("START TRANSACTION;\n")
        text.append(log.counterSQL(MySQLQueryText.decimal(plan.count)))
        text.append(";\nINSERT INTO \(schema.log) (\(MySQLLogTable.rowColumnNames)) VALUES")
        for (index, row) in plan.rows.enumerated() {
            if index == 0 {
                // The guard: NULL — which strict mode refuses, ending the
                // request before COMMIT — unless the counter row stands at
                // the value this transaction's UPDATE gave LAST_INSERT_ID().
                text.append("\n((SELECT m.last_update_id - ")
                text.append(row.back)
                text.append(" \(counterRow) AND m.last_update_id = LAST_INSERT_ID()), ")
            } else {
                text.append(",\n(LAST_INSERT_ID() - ")
                text.append(row.back)
                text.append(", ")
            }
            text.append(row.part)
            text.append(", ")
            text.append(row.payloadSize)
            text.append(", ")
            text.append(row.checksum)
            text.append(", ")
            if let single = row.singleKey {
                text.append(single.hash)
            } else {
                text.append("NULL")
            }
            text.append(", ")
            text.appendHexLiteralOrNull(row.singleKey?.key)
            text.append(", ")
            text.appendHexLiteral(row.bytes)
            text.append(")")
        }
        // The append's first id: LAST_INSERT_ID() is this transaction's once
        // the INSERT's guard passed.
        let first = "LAST_INSERT_ID() - \(plan.count - 1)"
        var statements = 3
        var start = 0
        while start < plan.replacedKeys.count {
            let group = plan.replacedKeys[start..<min(start + MySQLLogTable.keysPerCompaction, plan.replacedKeys.count)]
            let keys = group.map { single -> (hash: String, key: String) in
                var literal = MySQLQueryText(capacity: MySQLQueryText.hexLiteralLength(single.key.count))
                literal.appendHexLiteral(single.key)
                return (MySQLQueryText.decimal(single.hash), String(decoding: literal.bytes, as: UTF8.self))
            }
            text.append(";\n")
            text.append(log.compactionSQL(before: first, keys: keys))
            statements += 1
            start += group.count
        }
        text.append(";\nCOMMIT")
        commitIndex = statements
        if let pageAfter {
            let (window, _) = pageAfter.addingReportingOverflow(UInt64(MySQLLogTable.smallPageCount))
            let values = MySQLLogTable.smallPageValues(
                after: pageAfter, through: .max, window: window, bytes: UInt64(MySQLLogTable.smallPageBytes))
            text.append(";\n")
            text.append(log.smallPageSQL(values.map(MySQLQueryText.decimal)))
        }
        self.text = text.bytes
    }

    /// Sends the request on `connection` and reads its answer.
    ///
    /// - Throws: ``MySQLTransactionError/beforeCommit(_:)`` when nothing was
    ///   written (the transaction was rolled back); ``MySQLTransactionError/commitFailed(_:)``
    ///   when the server refused the commit; ``MySQLTransactionError/outcomeUnknown(_:)``
    ///   when the answer does not say whether it committed.
    func run(on connection: MySQLConnection) throws(MySQLTransactionError) -> MySQLAppendOutcome {
        let results: [MySQLBatchResult]
        do throws(MySQLBatchFailure) {
            results = try connection.runBatch(text, columns: [commitIndex + 1: MySQLLogTable.smallPageColumns])
        } catch {
            if error.completed.count > Self.counterIndex, error.completed[Self.counterIndex].affectedRows != 1, error.error.comesFromServer,
                !error.error.breaksConnection
            {
                // The counter row was not advanced, so the INSERT's guard
                // stopped the request: nothing was written; say why.
                connection.rollBackAfterFailure()
                let counter = error.completed[Self.counterIndex]
                _ = try MySQLAppendOutcome.ids(last: counter.insertID, matched: counter.affectedRows, plan: plan, log: log, on: connection)
            }
            results = try MySQLAppendOutcome.recover(from: error, commitIndex: commitIndex, connection: connection)
        }
        let counter = results[Self.counterIndex]
        let inserted = results[Self.insertIndex].affectedRows
        let ids = try MySQLAppendOutcome.ids(
            last: counter.insertID, matched: counter.affectedRows, plan: plan, log: log, on: connection)
        guard inserted == UInt64(plan.rows.count) else {
            // Impossible while the counter row is locked; never reported as a success.
            throw .outcomeUnknown(.unexpectedResult(
                "an append committed ids \(ids.first ?? 0)...\(ids.last ?? 0) but inserted \(inserted) of \(plan.rows.count) rows"))
        }
        let page = results.count > commitIndex + 1 ? results[commitIndex + 1].rows : nil
        return MySQLAppendOutcome(ids: ids, page: MySQLAppendOutcome.page(after: pageAfter, rows: page, last: ids.last, log: log))
    }
}

/// What an append in one request or one call returns, and the rules both
/// follow to read a failure (docs/FORMAT.md §4.3).
struct MySQLAppendOutcome: Sendable {
    /// The ids of the records, in order.
    var ids: [UInt64]

    /// The page after the position asked for, read right after the commit,
    /// when it was asked for and read whole in its statement.
    var page: MySQLLogTable.PageRead?

    /// The results of a request or call that stopped at the statement that
    /// failed, when it had committed (only its page read failed); otherwise
    /// the error, after making sure no transaction stays open.
    ///
    /// - Parameter commitIndex: The index of the result at which the commit
    ///   is known: a failure at a later index happened after the commit.
    static func recover(
        from failure: MySQLBatchFailure, commitIndex: Int, connection: MySQLConnection
    ) throws(MySQLTransactionError) -> [MySQLBatchResult] {
        let failed = failure.completed.count
        if failure.error.breaksConnection { connection.invalidate() }
        // Committed: only the page read failed.
        if failed > commitIndex { return failure.completed }
        // A broken connection, or not the server's answer: the server may
        // have run the statements after the failed one, the COMMIT with them.
        guard failure.error.comesFromServer, !failure.error.breaksConnection else {
            connection.invalidate()
            throw .outcomeUnknown(failure.error)
        }
        // The server ran nothing after the failed statement: the transaction
        // it began may still be open (or, when COMMIT failed, rolled back).
        connection.rollBackAfterFailure()
        if failed == commitIndex { throw .commitFailed(failure.error) }
        throw .beforeCommit(.client(failure.error))
    }

    /// The ids of the `plan.count` records ending at `last`, after checking
    /// that the counter statement matched the counter row.
    ///
    /// - Throws: `notADatastore` (as nothing written) when it did not: then
    ///   the request wrote nothing.
    static func ids(
        last: UInt64, matched: UInt64, plan: MySQLAppendPlan, log: MySQLLogTable, on connection: MySQLConnection
    ) throws(MySQLTransactionError) -> [UInt64] {
        do throws(MySQLWorkError) {
            try log.checkCounterAdvanced(matched: matched, last: last, count: plan.count, on: connection)
        } catch {
            throw .beforeCommit(error)
        }
        return (0..<plan.count).map { last - plan.count + 1 + $0 }
    }

    /// The page that `rows` (read with ``MySQLLogTable/smallPageColumns``
    /// after `after`) hold, when they hold one whole page through `last`.
    /// A page that cannot be used (history removed after `after`, a damaged
    /// record, more than one statement's worth) is left to a read.
    static func page(after: UInt64?, rows: [[MySQLValue]]?, last: UInt64?, log: MySQLLogTable) -> MySQLLogTable.PageRead? {
        guard let after, let rows, let last, let page = try? log.smallPage(after: after, from: rows),
            let entries = page.entries, page.meta.lastUpdateID >= last
        else { return nil }
        return MySQLLogTable.PageRead(entries: entries, meta: page.meta, precedingRecordChecksum: page.precedingRecordChecksum)
    }
}
