import WhyCache

// The statements of an append (docs/FORMAT.md §4.3): the counter row
// advanced under its lock, the single-key compaction, the rows inserted.

extension MySQLLogTable {
    /// The most rows one `INSERT` statement carries.
    private static let rowsPerInsert = 32

    /// The most payload bytes one `INSERT` statement carries (well below the
    /// servers' default `max_allowed_packet` of 16 MiB).
    private static let bytesPerInsert = 4 << 20

    /// Appends `payloads` as consecutive records inside the caller's
    /// transaction and returns their ids: the statements of
    /// docs/FORMAT.md §4.3, each a round trip, for appends too large for one
    /// request (``MySQLAppendRequest``).
    ///
    /// The counter row is advanced first, which locks it until the
    /// transaction commits: the lock is held from the moment ids are taken
    /// until the commit, so appends commit one after another, in id order.
    func append(_ payloads: [[UInt8]], on connection: MySQLConnection) throws(MySQLWorkError) -> [UInt64] {
        guard !payloads.isEmpty else { return [] }
        return try append(MySQLAppendPlan(payloads: payloads, compacting: compactsSingleKeyRecords), on: connection)
    }

    /// Appends what `plan` says inside the caller's transaction and returns
    /// the ids of its records, with the statements described above.
    func append(_ plan: MySQLAppendPlan, on connection: MySQLConnection) throws(MySQLWorkError) -> [UInt64] {
        let last = try advanceCounter(by: plan.count, on: connection)
        let first = last - plan.count + 1
        let rows = plan.rows.map { row -> [MySQLValue] in
            [
                .unsigned(last - row.back), .unsigned(row.part), .unsigned(row.payloadSize), .unsigned(row.checksum),
                row.singleKey.map { .unsigned($0.hash) } ?? .null, row.singleKey.map { .bytes($0.key) } ?? .null,
                .bytes(Array(row.bytes)),
            ]
        }
        try insert(rows, on: connection)
        try compact(plan.replacedKeys, before: first, on: connection)
        return (0..<plan.count).map { first + $0 }
    }

    /// Adds `count` to the counter in one statement, which also takes the
    /// counter row's exclusive lock until the transaction ends, and returns
    /// the new value (the last id handed out). `LAST_INSERT_ID(expr)` makes
    /// the server send the value back with the statement's result, so no
    /// second round trip reads it.
    private func advanceCounter(by count: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) -> UInt64 {
        let matched: UInt64
        let last: UInt64
        do throws(MySQLClientError) {
            let statement = try connection.statement(counterSQL("?"))
            matched = try statement.execute([.unsigned(count)])
            last = statement.insertID
        } catch {
            throw .client(error)
        }
        try checkCounterAdvanced(matched: matched, last: last, count: count, on: connection)
        return last
    }

    /// The statement that advances the counter by `count` (a placeholder
    /// or a decimal literal) and takes its lock; the server returns the new
    /// value as the statement's insert id.
    func counterSQL(_ count: String) -> String {
        "UPDATE \(schema.meta) SET last_update_id = LAST_INSERT_ID(last_update_id + \(count)) WHERE id = 1 AND format_version = \(MySQLSchema.formatVersion)"
    }

    /// Checks that the counter statement matched the counter row and handed
    /// out `count` ids ending at `last`.
    ///
    /// - Throws: `notADatastore` saying why when it did not (no counter row,
    ///   or another format version: a read of the row tells which).
    func checkCounterAdvanced(matched: UInt64, last: UInt64, count: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) {
        if matched == 1, last >= count { return }
        _ = try meta(on: connection)
        throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) could not be advanced"))
    }

    /// Deletes the older single-key records of `keys`: those with ids below
    /// `first`, the append's first id.
    ///
    /// Keys go to the server in groups of ``keysPerCompaction``
    /// (``compactionSQL(before:keys:)``).
    private func compact(_ keys: [MySQLAppendPlan.SingleKey], before first: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) {
        var start = 0
        while start < keys.count {
            let group = keys[start..<min(start + Self.keysPerCompaction, keys.count)]
            let sql = compactionSQL(before: "?", keys: Array(repeating: ("?", "?"), count: group.count))
            var parameters: [MySQLValue] = [.unsigned(first)]
            parameters += group.map { .unsigned($0.hash) }
            parameters += group.flatMap { [MySQLValue.unsigned($0.hash), .bytes($0.key)] }
            try connection.execute(sql, parameters)
            start += group.count
        }
    }

    /// The most keys one compaction statement deletes records of.
    static let keysPerCompaction = 64

    /// The statement that deletes every row of the single-key records of
    /// `keys` (each a hash and a key, as placeholders or literals) with
    /// ids below `first` (a placeholder or an expression).
    ///
    /// The hash list selects through the `single_key` index (forced: with
    /// bound parameters the optimizer may otherwise scan every older record
    /// through `update_id < ?`, which makes appends slower as the log
    /// grows); the (hash, key) pairs make a hash collision harmless. The
    /// list of hashes repeats the hashes of the pairs.
    func compactionSQL(before first: String, keys: [(hash: String, key: String)]) -> String {
        let hashes = keys.map(\.hash).joined(separator: ", ")
        let pairs = keys.map { "(\($0.hash), \($0.key))" }.joined(separator: ", ")
        return """
            DELETE old FROM \(schema.log) AS old JOIN \(schema.log) AS head FORCE INDEX (single_key) ON old.update_id = head.update_id
            WHERE head.part = 0 AND head.update_id < \(first) AND head.single_key_hash IN (\(hashes))
            AND (head.single_key_hash, head.single_key) IN (\(pairs))
            """
    }

    /// Inserts log rows, several per statement.
    private func insert(_ rows: [[MySQLValue]], on connection: MySQLConnection) throws(MySQLWorkError) {
        var start = 0
        while start < rows.count {
            var end = start
            var bytes = 0
            while end < rows.count, end - start < Self.rowsPerInsert, end == start || bytes < Self.bytesPerInsert {
                bytes += rows[end][6].bytesValue?.count ?? 0
                end += 1
            }
            let placeholders = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: end - start).joined(separator: ", ")
            let sql = "INSERT INTO \(schema.log) (\(Self.rowColumnNames)) VALUES \(placeholders)"
            try connection.execute(sql, rows[start..<end].flatMap { $0 })
            start = end
        }
    }

    /// The columns of a log row, in the order every insert gives them.
    static let rowColumnNames = "update_id, part, payload_size, checksum, single_key_hash, single_key, bytes"
}
