import WhyCache

/// The statements that read and write the log and its counter row.
///
/// Every method blocks and takes the connection to use, so it runs inside
/// ``MySQLConnection/run(_:)``. Values are always bound as parameters; only
/// the (validated) table names are part of the SQL text.
struct MySQLLogTable: Sendable {
    let schema: MySQLSchema

    /// "host:port/database.table", for messages.
    let location: String

    /// Whether single-key records replace the previous one of their key.
    let compactsSingleKeyRecords: Bool

    /// How often a page is read again when compaction emptied it while it
    /// was read (each retry sees a newer snapshot, so one retry nearly always
    /// suffices).
    private static let maximumPageAttempts = 64

    /// The most rows one `INSERT` statement carries.
    private static let rowsPerInsert = 32

    /// The most keys one compaction statement deletes records of.
    private static let keysPerCompaction = 64

    /// The most payload bytes one `INSERT` statement carries (well below the
    /// servers' default `max_allowed_packet` of 16 MiB).
    private static let bytesPerInsert = 4 << 20

    /// The counter row.
    struct Meta: Sendable {
        /// The newest id handed out.
        var lastUpdateID: UInt64
        /// The id through which records were removed.
        var removedThrough: UInt64
    }

    // MARK: Reading

    /// Reads the counter row.
    ///
    /// - Parameter forUpdate: Locks the row until the transaction ends; the
    ///   lock is what orders appends (docs/FORMAT.md §4).
    func meta(on connection: MySQLConnection, forUpdate: Bool = false) throws(MySQLWorkError) -> Meta {
        var found: [MySQLValue]?
        let sql = "SELECT format_version, last_update_id, removed_through FROM \(schema.meta) WHERE id = 1" + (forUpdate ? " FOR UPDATE" : "")
        try connection.query(sql, [], columns: [.unsigned, .unsigned, .unsigned]) { row in found = row }
        try checkFormat(version: found?[0].unsignedValue)
        guard let found, let last = found[1].unsignedValue, let removed = found[2].unsignedValue else {
            throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) holds NULL"))
        }
        return Meta(lastUpdateID: last, removedThrough: removed)
    }

    /// Checks the `format_version` of the counter row (`nil`: no counter row).
    private func checkFormat(version: UInt64?) throws(MySQLWorkError) {
        guard let version else {
            throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) is missing; run createIfMissing()"))
        }
        guard version == MySQLSchema.formatVersion else {
            throw .datastore(.notADatastore(path: location, reason: "the tables have format version \(version); this library reads version \(MySQLSchema.formatVersion)"))
        }
    }

    /// One page of records, and the counter row as the same snapshot showed it.
    struct PageRead: Sendable {
        /// The records of the page, in id order.
        var entries: [LogEntry]
        /// The counter row the page was read with.
        var meta: Meta
    }

    /// One page of records in `(after, through]` (see ``Datastore/readPage(after:through:limits:)``).
    ///
    /// **One statement when the rest of the log is small.** A poll that finds
    /// nothing new, or a few records, is one round trip: the counter row
    /// joined with every part row in `(after, through]`, on the condition
    /// that the whole rest of the log lies within ``smallPageCount`` ids of
    /// `after` and its payloads add up to at most ``smallPageBytes`` (both
    /// also within `limits`); otherwise the counter row alone. One statement
    /// reads one snapshot (InnoDB gives each statement one read view), so the
    /// rows, `last_update_id` and `removed_through` agree: a history removal
    /// that deleted the rows shows in `removed_through` (reported as
    /// `historyRewritten`, never as a page with holes), and a compaction that
    /// deleted a record also committed the record that replaced it.
    ///
    /// When the rest of the log is larger, the page is read with
    /// ``readLargePage(after:through:limits:on:)``.
    func readPage(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> PageRead {
        let upper = through ?? UInt64.max
        guard after < upper else { return PageRead(entries: [], meta: try meta(on: connection)) }
        let count = UInt64(min(limits.maximumCount, Self.smallPageCount))
        let bytes = UInt64(min(limits.maximumBytes, Self.smallPageBytes))
        let (window, _) = after.addingReportingOverflow(count)
        // No ORDER BY: sorting would cost the server a temporary table; the
        // rows are put in order here.
        let sql = """
            SELECT m.format_version, m.last_update_id, m.removed_through, r.update_id, r.part, r.payload_size, r.checksum, r.bytes
            FROM \(schema.meta) AS m
            LEFT JOIN \(schema.log) AS r ON r.update_id > ? AND r.update_id <= ? AND m.last_update_id <= ?
            AND (SELECT COALESCE(SUM(s.payload_size), 0) FROM \(schema.log) AS s WHERE s.update_id > ? AND s.update_id <= ? AND s.part = 0) <= ?
            WHERE m.id = 1
            """
        let parameters: [MySQLValue] = [
            .unsigned(after), .unsigned(min(upper, window)), .unsigned(window),
            .unsigned(after), .unsigned(window), .unsigned(bytes),
        ]
        var version: UInt64?
        var meta: Meta?
        var rows: [[MySQLValue]] = []
        let columns: [MySQLColumnKind] = [.unsigned, .unsigned, .unsigned] + PayloadAssembler.rowColumns
        try connection.query(sql, parameters, columns: columns) { row in
            version = row[0].unsignedValue
            if let last = row[1].unsignedValue, let removed = row[2].unsignedValue { meta = Meta(lastUpdateID: last, removedThrough: removed) }
            if row[3].unsignedValue != nil { rows.append(Array(row[3...])) }
        }
        try checkFormat(version: version)
        guard let meta else {
            throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) holds NULL"))
        }
        if after < meta.removedThrough {
            throw .datastore(.historyRewritten(firstRetainedUpdateID: meta.removedThrough + 1))
        }
        if rows.isEmpty {
            // Nothing new, or more than one statement's worth.
            guard meta.lastUpdateID > after else { return PageRead(entries: [], meta: meta) }
            return PageRead(entries: try readLargePage(after: after, through: through, limits: limits, on: connection), meta: meta)
        }
        rows.sort { ($0[0].unsignedValue ?? 0, $0[1].unsignedValue ?? 0) < ($1[0].unsignedValue ?? 0, $1[1].unsignedValue ?? 0) }
        var assembler = PayloadAssembler(location: location)
        for row in rows { assembler.add(row: row) }
        assembler.finishRows()
        return PageRead(entries: try Self.entries(of: assembler), meta: meta)
    }

    /// The most records a page read in one statement holds.
    static let smallPageCount = 256

    /// The most payload bytes a page read in one statement holds.
    static let smallPageBytes = 1 << 20

    /// The payloads `assembler` completed, cut before the first damaged one:
    /// a damaged record ends the page, and the next read, which starts at
    /// it, fails.
    private static func entries(of assembler: PayloadAssembler) throws(MySQLWorkError) -> [LogEntry] {
        var entries = assembler.completed.map { LogEntry(updateID: $0.id, payload: $0.payload) }
        if let failure = assembler.failure {
            guard case .corruptRecord(_, let damaged?, _) = failure else { throw .datastore(failure) }
            entries = entries.filter { $0.updateID < damaged }
            if entries.isEmpty { throw .datastore(failure) }
        }
        return entries
    }

    /// One page of records in `(after, through]`, read the general way, for
    /// pages that ``readPage(after:through:limits:on:)`` cannot read in one
    /// statement.
    ///
    /// Two statements: the first reads the counter row together with the ids
    /// and sizes of the page's head rows, which decide where the page ends
    /// (when nothing is new, it is the only one); the second reads the rows
    /// of those records together with `removed_through` again. Each statement
    /// reads one snapshot, so a history removal that deleted rows before the
    /// second one read them shows in its `removed_through`, and the page is
    /// reported as removed (`historyRewritten`), never returned with holes.
    private func readLargePage(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> [LogEntry] {
        let upper = through ?? UInt64.max
        // The statements read different snapshots. When compaction deleted
        // every record of the page between them, the second returns nothing
        // although newer records (their replacements) exist: then the page is
        // read again, and the new snapshot holds the replacements.
        for _ in 0..<Self.maximumPageAttempts {
            let head = try pageHead(after: after, through: upper, limits: limits, on: connection)
            if after < head.removedThrough {
                throw .datastore(.historyRewritten(firstRetainedUpdateID: head.removedThrough + 1))
            }
            guard let last = head.last else { return [] }
            var assembler = PayloadAssembler(location: location)
            var removedThrough: UInt64 = 0
            let sql = """
                SELECT update_id, part, payload_size, checksum, bytes, (SELECT removed_through FROM \(schema.meta) WHERE id = 1)
                FROM \(schema.log) WHERE update_id > ? AND update_id <= ? ORDER BY update_id, part
                """
            try connection.query(sql, [.unsigned(after), .unsigned(last)], columns: PayloadAssembler.rowColumns + [.unsigned]) { row in
                assembler.add(row: row)
                removedThrough = max(removedThrough, row[5].unsignedValue ?? 0)
            }
            if after < removedThrough {
                throw .datastore(.historyRewritten(firstRetainedUpdateID: removedThrough + 1))
            }
            assembler.finishRows()
            let entries = try Self.entries(of: assembler)
            if !entries.isEmpty { return entries }
        }
        throw .datastore(.unavailable(reason: "\(location): compaction removed every record of \(Self.maximumPageAttempts) reads of the page after \(after)"))
    }

    /// The counter row's `removed_through`, and the id of the last record of
    /// the page that starts after `after` (`nil` when there is none), read in
    /// one statement.
    private func pageHead(
        after: UInt64, through: UInt64, limits: DatastorePageLimits, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> (last: UInt64?, removedThrough: UInt64) {
        var meta: (version: UInt64, removedThrough: UInt64)?
        var heads: [(id: UInt64, size: UInt64)] = []
        if after < through {
            // The derived table holds ids and sizes only (no payload bytes).
            let sql = """
                SELECT m.format_version, m.removed_through, l.update_id, l.payload_size FROM \(schema.meta) AS m
                LEFT JOIN (SELECT update_id, payload_size FROM \(schema.log) WHERE update_id > ? AND update_id <= ? AND part = 0
                ORDER BY update_id LIMIT ?) AS l ON TRUE WHERE m.id = 1
                """
            let parameters: [MySQLValue] = [.unsigned(after), .unsigned(through), .unsigned(UInt64(limits.maximumCount))]
            try connection.query(sql, parameters, columns: [.unsigned, .unsigned, .unsigned, .unsigned]) { row in
                meta = (row[0].unsignedValue ?? 0, row[1].unsignedValue ?? 0)
                if let id = row[2].unsignedValue { heads.append((id, row[3].unsignedValue ?? 0)) }
            }
            try checkFormat(version: meta?.version)
        } else {
            let counter = try self.meta(on: connection)
            meta = (MySQLSchema.formatVersion, counter.removedThrough)
        }
        // A join returns rows in no promised order.
        heads.sort { $0.id < $1.id }
        var last: UInt64?
        var bytes = 0
        for head in heads {
            // A page stops growing once its payloads reach the byte limit.
            guard bytes < limits.maximumBytes else { break }
            last = head.id
            bytes += Int(clamping: head.size)
        }
        return (last, meta?.removedThrough ?? 0)
    }

    // MARK: Appending

    /// Appends `payloads` as consecutive records inside the caller's
    /// transaction and returns their ids.
    ///
    /// The counter row is advanced first, which locks it until the
    /// transaction commits: the lock is held from the moment ids are taken
    /// until the commit, so appends commit one after another, in id order.
    func append(_ payloads: [[UInt8]], on connection: MySQLConnection) throws(MySQLWorkError) -> [UInt64] {
        guard !payloads.isEmpty else { return [] }
        let last = try advanceCounter(by: UInt64(payloads.count), on: connection)
        let first = last - UInt64(payloads.count) + 1
        let ids = (0..<UInt64(payloads.count)).map { first + $0 }
        var rows: [[MySQLValue]] = []
        var singleKeys: [(id: UInt64, hash: UInt64, key: [UInt8])] = []
        for (id, payload) in zip(ids, payloads) {
            let singleKey = compactsSingleKeyRecords ? Self.singleKey(of: payload) : nil
            if let singleKey { singleKeys.append((id, StableHash.fnv1a(singleKey), singleKey)) }
            for (part, bytes) in PayloadRows.parts(of: payload).enumerated() {
                let head = part == 0
                let key = head ? singleKey : nil
                rows.append([
                    .unsigned(id), .unsigned(UInt64(part)),
                    .unsigned(head ? UInt64(payload.count) : 0),
                    .unsigned(head ? PayloadRows.checksum(of: payload) : 0),
                    key.map { .unsigned(StableHash.fnv1a($0)) } ?? .null,
                    key.map { .bytes($0) } ?? .null,
                    .bytes(Array(bytes)),
                ])
            }
        }
        try insert(rows, on: connection)
        try compact(singleKeys, before: first, on: connection)
        return ids
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
            let statement = try connection.statement(
                "UPDATE \(schema.meta) SET last_update_id = LAST_INSERT_ID(last_update_id + ?) WHERE id = 1 AND format_version = ?")
            matched = try statement.execute([.unsigned(count), .unsigned(MySQLSchema.formatVersion)])
            last = statement.insertID
        } catch {
            throw .client(error)
        }
        guard matched == 1, last >= count else {
            // No counter row, or another format version: `meta` says which.
            _ = try meta(on: connection)
            throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) could not be advanced"))
        }
        return last
    }

    /// Deletes the single-key records that the batch's single-key records
    /// replace: older ones of the same keys, and those of the batch itself
    /// that a later record of the batch replaces.
    ///
    /// Keys go to the server in groups of ``keysPerCompaction``: the hash
    /// list selects through the `single_key` index (forced: with bound
    /// parameters the optimizer may otherwise scan every older record through
    /// `update_id < ?`, which makes appends slower as the log grows), the
    /// (hash, key) pairs make a hash collision harmless.
    private func compact(
        _ singleKeys: [(id: UInt64, hash: UInt64, key: [UInt8])], before first: UInt64, on connection: MySQLConnection
    ) throws(MySQLWorkError) {
        guard !singleKeys.isEmpty else { return }
        var newest: [[UInt8]: UInt64] = [:]
        for single in singleKeys { newest[single.key] = single.id }
        let replacedInBatch = singleKeys.filter { newest[$0.key] != $0.id }.map(\.id)
        var distinct: [(hash: UInt64, key: [UInt8])] = []
        for single in singleKeys where newest[single.key] == single.id { distinct.append((single.hash, single.key)) }
        var start = 0
        while start < distinct.count {
            let group = distinct[start..<min(start + Self.keysPerCompaction, distinct.count)]
            let hashes = Array(repeating: "?", count: group.count).joined(separator: ", ")
            let pairs = Array(repeating: "(?, ?)", count: group.count).joined(separator: ", ")
            let sql = """
                DELETE old FROM \(schema.log) AS old JOIN \(schema.log) AS head FORCE INDEX (single_key) ON old.update_id = head.update_id
                WHERE head.part = 0 AND head.update_id < ? AND head.single_key_hash IN (\(hashes))
                AND (head.single_key_hash, head.single_key) IN (\(pairs))
                """
            var parameters: [MySQLValue] = [.unsigned(first)]
            parameters += group.map { .unsigned($0.hash) }
            parameters += group.flatMap { [MySQLValue.unsigned($0.hash), .bytes($0.key)] }
            try connection.execute(sql, parameters)
            start += group.count
        }
        var index = 0
        while index < replacedInBatch.count {
            let group = replacedInBatch[index..<min(index + Self.keysPerCompaction, replacedInBatch.count)]
            let list = Array(repeating: "?", count: group.count).joined(separator: ", ")
            try connection.execute("DELETE FROM \(schema.log) WHERE update_id IN (\(list))", group.map { .unsigned($0) })
            index += group.count
        }
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
            let sql = "INSERT INTO \(schema.log) (update_id, part, payload_size, checksum, single_key_hash, single_key, bytes) VALUES \(placeholders)"
            try connection.execute(sql, rows[start..<end].flatMap { $0 })
            start = end
        }
    }

    /// The key of `payload` when it is a valid log record with exactly one
    /// operation; otherwise `nil` (the datastore stores payloads it cannot
    /// decode unchanged, and never compacts them).
    static func singleKey(of payload: [UInt8]) -> [UInt8]? {
        payload.withUnsafeBytes { bytes -> [UInt8]? in
            guard let record = try? LogRecordView(validating: bytes), record.operationCount == 1 else { return nil }
            var key: [UInt8]?
            record.forEachOperation { _, operationKey, _ in key = Array(operationKey) }
            return key
        }
    }

    // MARK: Removing history

    /// Moves `removed_through` to `updateID` (in the caller's transaction)
    /// after checking that a checkpoint covers it and that it exists.
    ///
    /// - Returns: whether anything changed.
    func markRemoved(
        through updateID: UInt64, latestCheckpoint: UInt64?, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> Bool {
        let meta = try meta(on: connection, forUpdate: true)
        guard updateID > meta.removedThrough else { return false }
        guard let latestCheckpoint, latestCheckpoint >= updateID else {
            throw .datastore(.noCheckpointCovers(updateID: updateID))
        }
        guard updateID <= meta.lastUpdateID else {
            throw .datastore(.invalidRequest(reason: "cannot remove records through \(updateID): the newest record is \(meta.lastUpdateID)"))
        }
        try connection.execute("UPDATE \(schema.meta) SET removed_through = ? WHERE id = 1", [.unsigned(updateID)])
        return true
    }

    /// Deletes up to `limit` rows of records at or below `removed_through`;
    /// returns how many it deleted. Runs in autocommit mode, in small steps,
    /// so that no long transaction holds locks.
    func deleteRemovedRows(limit: Int, on connection: MySQLConnection) throws(MySQLWorkError) -> UInt64 {
        let sql = "DELETE FROM \(schema.log) WHERE update_id <= (SELECT removed_through FROM \(schema.meta) WHERE id = 1) ORDER BY update_id, part LIMIT ?"
        return try connection.execute(sql, [.unsigned(UInt64(limit))])
    }
}

