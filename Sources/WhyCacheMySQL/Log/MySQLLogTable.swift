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
        /// The last four bytes of record `after`, read with the page
        /// (``LogPage/precedingRecordChecksum``); nil when it does not exist
        /// or was not read.
        var precedingRecordChecksum: UInt32? = nil
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
        let sql = smallPageSQL(Array(repeating: "?", count: 7))
        let parameters: [MySQLValue] = Self.smallPageValues(after: after, through: upper, window: window, bytes: bytes).map { .unsigned($0) }
        var rows: [[MySQLValue]] = []
        try connection.query(sql, parameters, columns: Self.smallPageColumns) { rows.append($0) }
        let page = try smallPage(after: after, from: rows)
        guard let entries = page.entries else {
            // More than one statement's worth.
            return PageRead(
                entries: try readLargePage(after: after, through: through, limits: limits, on: connection), meta: page.meta,
                precedingRecordChecksum: page.precedingRecordChecksum)
        }
        return PageRead(entries: entries, meta: page.meta, precedingRecordChecksum: page.precedingRecordChecksum)
    }

    /// The statement of a page read in one statement (see
    /// ``readPage(after:through:limits:on:)``), with `values` in its seven
    /// value slots: placeholders for a prepared statement, or the decimal
    /// literals of ``smallPageValues(after:through:window:bytes:)`` in a
    /// multi-statement request.
    ///
    /// Every row also carries the last four bytes of record `after` (the
    /// last bytes of its last part: its checksum,
    /// ``LogPage/precedingRecordChecksum``), one primary-key lookup.
    func smallPageSQL(_ values: [String]) -> String {
        Self.smallPageSQL(schema: schema, values)
    }

    /// ``smallPageSQL(_:)`` for the tables of `schema`.
    static func smallPageSQL(schema: MySQLSchema, _ values: [String]) -> String {
        // No ORDER BY: sorting would cost the server a temporary table; the
        // rows are put in order by ``smallPage(after:from:)``.
        """
        SELECT m.format_version, m.last_update_id, m.removed_through, r.update_id, r.part, r.payload_size, r.checksum, r.bytes,
        (SELECT RIGHT(t.bytes, 4) FROM \(schema.log) AS t WHERE t.update_id = \(values[0]) ORDER BY t.part DESC LIMIT 1)
        FROM \(schema.meta) AS m
        LEFT JOIN \(schema.log) AS r ON r.update_id > \(values[1]) AND r.update_id <= \(values[2]) AND m.last_update_id <= \(values[3])
        AND (SELECT COALESCE(SUM(s.payload_size), 0) FROM \(schema.log) AS s WHERE s.update_id > \(values[4]) AND s.update_id <= \(values[5]) AND s.part = 0) <= \(values[6])
        WHERE m.id = 1
        """
    }

    /// The seven values of ``smallPageSQL(_:)`` for a page after `after`
    /// through `through`, at most `window` (`after` plus the most records),
    /// holding at most `bytes` payload bytes.
    static func smallPageValues(after: UInt64, through: UInt64, window: UInt64, bytes: UInt64) -> [UInt64] {
        [after, after, min(through, window), window, after, window, bytes]
    }

    /// The columns of ``smallPageSQL(_:)``: the counter row, a part row, and
    /// the last bytes of record `after`.
    static let smallPageColumns: [MySQLColumnKind] = [.unsigned, .unsigned, .unsigned] + PayloadAssembler.rowColumns + [.bytes]

    /// The page that the rows of ``smallPageSQL(_:)`` hold: the counter row,
    /// and the records — `nil` when the rest of the log was more than one
    /// statement's worth, so that the statement returned the counter row alone.
    ///
    /// - Throws: `notADatastore` for a missing counter row or another format
    ///   version; `historyRewritten` when records after `after` were removed;
    ///   `corruptRecord` when the first record is damaged (a later damaged
    ///   record ends the page before it).
    func smallPage(
        after: UInt64, from rows: [[MySQLValue]]
    ) throws(MySQLWorkError) -> (meta: Meta, entries: [LogEntry]?, precedingRecordChecksum: UInt32?) {
        var version: UInt64?
        var meta: Meta?
        var parts: [[MySQLValue]] = []
        var preceding: UInt32?
        let partColumns = 3..<(3 + PayloadAssembler.rowColumns.count)
        for row in rows {
            version = row[0].unsignedValue
            if let last = row[1].unsignedValue, let removed = row[2].unsignedValue { meta = Meta(lastUpdateID: last, removedThrough: removed) }
            if row[3].unsignedValue != nil { parts.append(Array(row[partColumns])) }
            if let suffix = row[partColumns.upperBound].bytesValue, suffix.count == LogRecordFormat.checksumSize {
                preceding = LogRecordFormat.trailingChecksum(of: suffix)
            }
        }
        try checkFormat(version: version)
        guard let meta else {
            throw .datastore(.notADatastore(path: location, reason: "the counter row of \(schema.meta) holds NULL"))
        }
        if after < meta.removedThrough {
            throw .datastore(.historyRewritten(firstRetainedUpdateID: meta.removedThrough + 1))
        }
        if parts.isEmpty {
            // Nothing new, or more than one statement's worth.
            return (meta, meta.lastUpdateID > after ? nil : [], preceding)
        }
        parts.sort { ($0[0].unsignedValue ?? 0, $0[1].unsignedValue ?? 0) < ($1[0].unsignedValue ?? 0, $1[1].unsignedValue ?? 0) }
        var assembler = PayloadAssembler(location: location)
        for part in parts { assembler.add(row: part) }
        assembler.finishRows()
        return (meta, try Self.entries(of: assembler), preceding)
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

