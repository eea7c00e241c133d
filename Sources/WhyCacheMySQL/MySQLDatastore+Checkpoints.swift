import WhyCache

// The checkpoints of a MySQL log (docs/FORMAT.md §4.4): the Datastore
// methods that find, write, read and remove them.

extension MySQLDatastore {
    /// The newest published checkpoint; from a replica when the datastore
    /// has replicas (one that shows every removal this datastore has seen,
    /// so it holds the checkpoint that covers it).
    public func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo? {
        let (log, checkpoints) = (log, checkpoints)
        return try await router.read("read the latest checkpoint") { connection throws(MySQLWorkError) in
            // The counter row first: the checkpoint read after it sees at
            // least the removals it shows (a replica only moves forward).
            let meta = try log.meta(on: connection)
            return .init(value: try checkpoints.latest(on: connection), meta: meta)
        }
    }

    public func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter {
        let log = log
        let latest = try await run("read the newest id") { connection throws(MySQLWorkError) in
            try log.meta(on: connection).lastUpdateID
        }
        guard updateID >= 1, updateID <= latest else {
            throw .invalidRequest(reason: "a checkpoint at update \(updateID) is outside the log (1...\(latest))")
        }
        let checkpoints = checkpoints
        try await run("reclaim abandoned checkpoints") { connection throws(MySQLWorkError) in
            try checkpoints.deleteAbandoned(on: connection)
        }
        let lockName = MySQLNamedLock.name(
            database: configuration.database, table: configuration.table,
            purpose: "checkpoint:" + String(UInt64.random(in: 1...UInt64.max), radix: 16))
        let acquired: MySQLNamedLock?
        do throws(MySQLClientError) {
            acquired = try await MySQLNamedLock.acquire(lockName, pool: pool)
        } catch {
            throw error.datastoreError(operation: "begin checkpoint", location: configuration.location)
        }
        guard let lock = acquired else {
            throw .requestFailed(operation: "begin checkpoint", reason: "a fresh random lock name was taken")
        }
        do throws(DatastoreError) {
            let checkpointID = try await run("begin checkpoint") { connection throws(MySQLWorkError) in
                try checkpoints.create(updateID: updateID, writerLock: lockName, on: connection)
            }
            return MySQLCheckpointWriter(updateID: updateID, checkpointID: checkpointID, lock: lock, pool: pool, table: checkpoints)
        } catch {
            await lock.release()
            throw error
        }
    }

    public func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        let (log, checkpoints) = (log, checkpoints)
        let page = try await router.read("read checkpoint") { connection throws(MySQLWorkError) -> MySQLReadRouter.Observed<CheckpointPayloadPage> in
            let meta = try log.meta(on: connection)
            guard let found = try checkpoints.published(at: checkpoint.updateID, on: connection) else {
                throw .datastore(.checkpointNotFound(updateID: checkpoint.updateID))
            }
            let payloads = try checkpoints.readPayloads(checkpointID: found.id, from: position.index, limits: limits, on: connection)
            // Read the row again: a checkpoint removed while its payloads were
            // read is reported as removed, never returned incomplete.
            guard try checkpoints.published(at: checkpoint.updateID, on: connection)?.id == found.id else {
                throw .datastore(.checkpointNotFound(updateID: checkpoint.updateID))
            }
            for (offset, entry) in payloads.enumerated() where entry.id != position.index + UInt64(offset) {
                throw .datastore(.corruptRecord(
                    location: "\(checkpoints.location) checkpoint \(found.id)", updateID: checkpoint.updateID,
                    reason: "payload \(position.index + UInt64(offset)) is missing"))
            }
            let end = position.index + UInt64(payloads.count)
            if payloads.isEmpty, end < found.recordCount {
                throw .datastore(.corruptRecord(
                    location: "\(checkpoints.location) checkpoint \(found.id)", updateID: checkpoint.updateID,
                    reason: "payload \(end) of \(found.recordCount) is missing"))
            }
            return .init(
                value: CheckpointPayloadPage(payloads: payloads.map(\.payload), next: end < found.recordCount ? CheckpointPosition(index: end, offset: end) : nil),
                meta: meta)
        }
        return (page.payloads, page.next)
    }

    public func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError) {
        let checkpoints = checkpoints
        try await run("remove checkpoints") { connection throws(MySQLWorkError) in
            try checkpoints.deletePublished(before: updateID, on: connection)
        }
    }
}

/// A page of checkpoint payloads, passed back from a connection's queue.
private struct CheckpointPayloadPage: Sendable {
    var payloads: [[UInt8]]
    var next: CheckpointPosition?
}
