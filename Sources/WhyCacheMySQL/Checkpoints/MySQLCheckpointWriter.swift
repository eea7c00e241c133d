import WhyCache

/// Writes one checkpoint of a ``MySQLDatastore``.
///
/// The writer holds a named lock on a connection of its own for as long as it
/// lives; the lock marks its unpublished checkpoint row as "being built".
/// When the writer is abandoned, dropped, or its process dies, the lock is
/// released and the next `beginCheckpoint` deletes the row and its payloads.
final class MySQLCheckpointWriter: CheckpointWriter {
    let updateID: UInt64

    private let pool: MySQLConnectionPool
    private let table: MySQLCheckpointTable
    private let lock: MySQLNamedLock
    private let checkpointID: UInt64
    private let state = Locked(State())

    /// Payload bytes buffered before they are written.
    private static let bufferBytes = 1 << 20

    private struct State {
        var buffered: [[UInt8]] = []
        var bufferedBytes = 0
        var written: UInt64 = 0
        var recordCount: UInt64 = 0
        var byteCount: UInt64 = 0
        var finished = false
    }

    init(updateID: UInt64, checkpointID: UInt64, lock: MySQLNamedLock, pool: MySQLConnectionPool, table: MySQLCheckpointTable) {
        self.updateID = updateID
        self.checkpointID = checkpointID
        self.lock = lock
        self.pool = pool
        self.table = table
    }

    func append(_ payload: [UInt8]) async throws(DatastoreError) {
        guard payload.count <= WhyCacheLimits.maximumRecordSize else {
            throw .recordTooLarge(size: payload.count, maximum: WhyCacheLimits.maximumRecordSize)
        }
        let full = try state.withLock { state throws(DatastoreError) -> Bool in
            guard !state.finished else { throw .invalidRequest(reason: "the checkpoint writer was already published or abandoned") }
            state.buffered.append(payload)
            state.bufferedBytes += payload.count
            state.recordCount += 1
            state.byteCount += UInt64(payload.count)
            return state.bufferedBytes >= Self.bufferBytes
        }
        if full { try await flush() }
    }

    func publish() async throws(DatastoreError) -> CheckpointInfo {
        let counts = try state.withLock { state throws(DatastoreError) -> (UInt64, UInt64) in
            guard !state.finished else { throw .invalidRequest(reason: "the checkpoint writer was already published or abandoned") }
            return (state.recordCount, state.byteCount)
        }
        try await flush()
        guard lock.isHeld else {
            await abandon()
            throw .unavailable(reason: "\(table.location): the connection that marked the checkpoint as being built was lost; start it again")
        }
        let (table, checkpointID, updateID) = (table, checkpointID, updateID)
        let published: Bool
        do throws(MySQLPoolError<MySQLTransactionError>) {
            published = try await pool.runTransaction(retryingBeforeCommit: false) { connection throws(MySQLWorkError) -> Bool in
                try table.publish(checkpointID, updateID: updateID, recordCount: counts.0, byteCount: counts.1, on: connection)
            }
        } catch {
            await abandon()
            throw error.datastoreError(operation: "publish checkpoint", location: table.location)
        }
        guard published else {
            await abandon()
            throw .unavailable(reason: "\(table.location): the unfinished checkpoint was reclaimed; start it again")
        }
        state.withLock { $0.finished = true }
        await lock.release()
        return CheckpointInfo(updateID: updateID, recordCount: counts.0, byteCount: counts.1)
    }

    func abandon() async {
        let wasFinished = state.withLock { state -> Bool in
            defer { state.finished = true }
            return state.finished
        }
        guard !wasFinished else { return }
        let (table, checkpointID) = (table, checkpointID)
        // Best effort: if this fails, the released lock lets the next
        // `beginCheckpoint` reclaim the row.
        _ = try? await pool.run { connection throws(MySQLWorkError) in
            try table.delete(checkpointID, on: connection)
        }
        await lock.release()
    }

    /// Writes the buffered payloads.
    private func flush() async throws(DatastoreError) {
        let (payloads, first) = state.withLock { state -> ([[UInt8]], UInt64) in
            defer {
                state.written += UInt64(state.buffered.count)
                state.buffered = []
                state.bufferedBytes = 0
            }
            return (state.buffered, state.written)
        }
        guard !payloads.isEmpty else { return }
        let (table, checkpointID) = (table, checkpointID)
        do throws(MySQLPoolError<MySQLWorkError>) {
            try await pool.run { connection throws(MySQLWorkError) in
                try table.insertPayloads(payloads, first: first, checkpointID: checkpointID, on: connection)
            }
        } catch {
            throw error.datastoreError(operation: "write checkpoint", location: table.location)
        }
    }

}
