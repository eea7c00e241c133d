import WhyCache

/// The statements on the checkpoint tables.
///
/// A checkpoint row is created unpublished (`published = 0`) by a writer that
/// holds the named lock stored in `writer_lock`; its payloads go to
/// `<log>_checkpoint_payloads`; one transaction flips `published` to 1 and
/// drops any older checkpoint at the same update id. Unpublished rows whose
/// lock is free belong to writers that died or were dropped, and are deleted
/// by the next ``deleteAbandoned(on:)``.
///
/// Every method blocks; call it inside ``MySQLConnection/run(_:)``.
struct MySQLCheckpointTable: Sendable {
    let schema: MySQLSchema
    let location: String

    /// The newest published checkpoint.
    func latest(on connection: MySQLConnection) throws(MySQLWorkError) -> CheckpointInfo? {
        var info: CheckpointInfo?
        try connection.query(
            "SELECT update_id, record_count, byte_count FROM \(schema.checkpoints) WHERE published = 1 ORDER BY update_id DESC, checkpoint_id DESC LIMIT 1",
            [], columns: [.unsigned, .unsigned, .unsigned]
        ) { row in
            info = CheckpointInfo(updateID: row[0].unsignedValue ?? 0, recordCount: row[1].unsignedValue ?? 0, byteCount: row[2].unsignedValue ?? 0)
        }
        return info
    }

    /// The update id of the newest published checkpoint.
    func latestUpdateID(on connection: MySQLConnection) throws(MySQLWorkError) -> UInt64? {
        try latest(on: connection)?.updateID
    }

    /// The row id and payload count of the published checkpoint at `updateID`.
    func published(at updateID: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) -> (id: UInt64, recordCount: UInt64)? {
        var found: (UInt64, UInt64)?
        try connection.query(
            "SELECT checkpoint_id, record_count FROM \(schema.checkpoints) WHERE update_id = ? AND published = 1 ORDER BY checkpoint_id DESC LIMIT 1",
            [.unsigned(updateID)], columns: [.unsigned, .unsigned]
        ) { row in
            found = (row[0].unsignedValue ?? 0, row[1].unsignedValue ?? 0)
        }
        return found
    }

    /// Creates the unpublished row of a new checkpoint and returns its id.
    func create(updateID: UInt64, writerLock: String, on connection: MySQLConnection) throws(MySQLWorkError) -> UInt64 {
        do throws(MySQLClientError) {
            let statement = try connection.statement(
                "INSERT INTO \(schema.checkpoints) (update_id, published, record_count, byte_count, writer_lock) VALUES (?, 0, 0, 0, ?)")
            try statement.execute([.unsigned(updateID), .bytes(Array(writerLock.utf8))])
            return statement.insertID
        } catch {
            throw .client(error)
        }
    }

    /// Stores payloads `first`, `first + 1`, … of checkpoint `checkpointID`.
    func insertPayloads(_ payloads: [[UInt8]], first: UInt64, checkpointID: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) {
        var rows: [[MySQLValue]] = []
        for (offset, payload) in payloads.enumerated() {
            for (part, bytes) in PayloadRows.parts(of: payload).enumerated() {
                rows.append([
                    .unsigned(checkpointID), .unsigned(first + UInt64(offset)), .unsigned(UInt64(part)),
                    .unsigned(part == 0 ? UInt64(payload.count) : 0),
                    .unsigned(part == 0 ? PayloadRows.checksum(of: payload) : 0),
                    .bytes(Array(bytes)),
                ])
            }
        }
        // One row per statement: checkpoint payloads are written in the
        // background, where a round trip per part costs little.
        for row in rows {
            try connection.execute(
                "INSERT INTO \(schema.checkpointPayloads) (checkpoint_id, sequence, part, payload_size, checksum, bytes) VALUES (?, ?, ?, ?, ?, ?)",
                row)
        }
    }

    /// Publishes checkpoint `checkpointID` in the caller's transaction,
    /// replacing a published checkpoint at the same update id.
    ///
    /// - Returns: `false` when the unpublished row no longer exists (it was
    ///   reclaimed because the writer's lock was lost).
    func publish(
        _ checkpointID: UInt64, updateID: UInt64, recordCount: UInt64, byteCount: UInt64, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> Bool {
        var replaced: [UInt64] = []
        try connection.query(
            "SELECT checkpoint_id FROM \(schema.checkpoints) WHERE update_id = ? AND published = 1 AND checkpoint_id <> ? FOR UPDATE",
            [.unsigned(updateID), .unsigned(checkpointID)], columns: [.unsigned]
        ) { row in
            if let id = row[0].unsignedValue { replaced.append(id) }
        }
        for id in replaced { try delete(id, on: connection) }
        let changed = try connection.execute(
            "UPDATE \(schema.checkpoints) SET published = 1, record_count = ?, byte_count = ? WHERE checkpoint_id = ? AND published = 0",
            [.unsigned(recordCount), .unsigned(byteCount), .unsigned(checkpointID)])
        return changed == 1
    }

    /// Deletes a checkpoint row, then its payloads.
    func delete(_ checkpointID: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) {
        try connection.execute("DELETE FROM \(schema.checkpoints) WHERE checkpoint_id = ?", [.unsigned(checkpointID)])
        try connection.execute("DELETE FROM \(schema.checkpointPayloads) WHERE checkpoint_id = ?", [.unsigned(checkpointID)])
    }

    /// Deletes the published checkpoints older than `updateID`.
    func deletePublished(before updateID: UInt64, on connection: MySQLConnection) throws(MySQLWorkError) {
        var ids: [UInt64] = []
        try connection.query(
            "SELECT checkpoint_id FROM \(schema.checkpoints) WHERE published = 1 AND update_id < ?",
            [.unsigned(updateID)], columns: [.unsigned]
        ) { row in
            if let id = row[0].unsignedValue { ids.append(id) }
        }
        for id in ids { try delete(id, on: connection) }
    }

    /// Deletes unpublished checkpoints whose writer no longer holds its lock.
    func deleteAbandoned(on connection: MySQLConnection) throws(MySQLWorkError) {
        var building: [(UInt64, String)] = []
        try connection.query(
            "SELECT checkpoint_id, writer_lock FROM \(schema.checkpoints) WHERE published = 0",
            [], columns: [.unsigned, .bytes]
        ) { row in
            building.append((row[0].unsignedValue ?? 0, String(decoding: row[1].bytesValue ?? [], as: UTF8.self)))
        }
        for (id, lock) in building {
            if try MySQLNamedLock.isFree(lock, on: connection) { try delete(id, on: connection) }
        }
    }

    /// One page of payloads of checkpoint `checkpointID` from `sequence` on:
    /// the same two-step read as a page of the log.
    func readPayloads(
        checkpointID: UInt64, from sequence: UInt64, limits: DatastorePageLimits, on connection: MySQLConnection
    ) throws(MySQLWorkError) -> [(id: UInt64, payload: [UInt8])] {
        var last: UInt64?
        var bytes = 0
        try connection.query(
            "SELECT sequence, payload_size FROM \(schema.checkpointPayloads) WHERE checkpoint_id = ? AND sequence >= ? AND part = 0 ORDER BY sequence LIMIT ?",
            [.unsigned(checkpointID), .unsigned(sequence), .unsigned(UInt64(limits.maximumCount))], columns: [.unsigned, .unsigned]
        ) { row in
            guard bytes < limits.maximumBytes else { return }
            last = row[0].unsignedValue
            bytes += Int(clamping: row[1].unsignedValue ?? 0)
        }
        guard let last else { return [] }
        var assembler = PayloadAssembler(location: "\(location) checkpoint \(checkpointID)")
        try connection.query(
            "SELECT sequence, part, payload_size, checksum, bytes FROM \(schema.checkpointPayloads) WHERE checkpoint_id = ? AND sequence >= ? AND sequence <= ? ORDER BY sequence, part",
            [.unsigned(checkpointID), .unsigned(sequence), .unsigned(last)], columns: PayloadAssembler.rowColumns
        ) { row in assembler.add(row: row) }
        assembler.finishRows()
        if let failure = assembler.failure { throw .datastore(failure) }
        return assembler.completed
    }
}
