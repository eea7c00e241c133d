import Testing
import WhyCache

/// The behaviour every ``Datastore`` must have, as reusable checks.
///
/// A test file for a datastore creates a `DatastoreConformance` with a factory
/// that returns a fresh, empty, initialized datastore, and calls each check
/// from its own `@Test` (or ``runAll()``). Checks only use the protocol, so
/// the file datastore and the MySQL datastore run exactly the same ones.
struct DatastoreConformance: Sendable {
    /// Returns a new, empty datastore on which `createIfMissing()` was called.
    let makeStore: @Sendable () async throws -> any Datastore

    /// Runs every check, each on a fresh datastore.
    func runAll() async throws {
        try await emptyLog()
        try await createIfMissingIsIdempotent()
        try await appendReturnsIncreasingIDs()
        try await readRanges()
        try await streamingSpansManyPages()
        try await batchAppend()
        try await largePayloads()
        try await checkpointPublishAndRead()
        try await checkpointAbandon()
        try await checkpointBounds()
        try await removeRecordsRequiresCheckpoint()
        try await removeRecordsRewritesHistory()
        try await removeCheckpoints()
        try await maintenanceLockIsExclusive()
        try await concurrentAppends()
    }

    /// A new log is empty: id 0, nothing to read, no checkpoint.
    func emptyLog() async throws {
        let store = try await makeStore()
        #expect(try await store.latestUpdateID() == 0)
        #expect(try await store.firstRetainedUpdateID() == 1)
        #expect(try await store.readRecords(after: 0, through: nil, limits: .default).isEmpty)
        #expect(try await collect(store.records(after: 0)).isEmpty)
        #expect(try await store.latestCheckpoint() == nil)
    }

    /// Creating an existing store again keeps its contents.
    func createIfMissingIsIdempotent() async throws {
        let store = try await makeStore()
        _ = try await store.append(payload("kept"))
        try await store.createIfMissing()
        #expect(try await store.latestUpdateID() == 1)
        #expect(try await collect(store.records(after: 0)).map(\.payload) == [payload("kept")])
    }

    /// Ids strictly increase and the newest id is the last one returned.
    func appendReturnsIncreasingIDs() async throws {
        let store = try await makeStore()
        var ids: [UInt64] = []
        for index in 0..<10 {
            ids.append(try await store.append(payload("record \(index)")))
            #expect(try await store.latestUpdateID() == ids.last)
        }
        #expect(ids.first.map { $0 >= 1 } == true)
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        let entries = try await collect(store.records(after: 0))
        #expect(entries.map(\.updateID) == ids)
        #expect(entries.map(\.payload) == (0..<10).map { payload("record \($0)") })
    }

    /// `(after, through]` bounds, empty ranges and ranges beyond the end.
    func readRanges() async throws {
        let store = try await makeStore()
        let ids = try await store.append(contentsOf: (0..<20).map { payload("r\($0)") })
        func read(_ after: UInt64, _ through: UInt64?, count: Int = 1_000) async throws -> [UInt64] {
            try await store.readRecords(after: after, through: through, limits: DatastorePageLimits(maximumCount: count, maximumBytes: 1 << 20)).map(\.updateID)
        }
        #expect(try await read(0, nil) == ids)
        #expect(try await read(ids[4], ids[9]) == Array(ids[5...9]))
        #expect(try await read(ids[9], ids[9]).isEmpty)
        #expect(try await read(ids[9], ids[4]).isEmpty)
        #expect(try await read(ids[19], nil).isEmpty)
        #expect(try await read(ids[19] + 100, nil).isEmpty)
        #expect(try await read(ids[17], ids[19] + 100) == Array(ids[18...19]))
        #expect(try await read(0, nil, count: 3) == Array(ids[0..<3]))
        #expect(try await collect(store.records(after: ids[2], through: ids[6])).map(\.updateID) == Array(ids[3...6]))
        #expect(try await collect(store.records(after: ids[6], through: ids[2])).isEmpty)
    }

    /// A range larger than one page streams completely and in order.
    func streamingSpansManyPages() async throws {
        let store = try await makeStore()
        var written: [[UInt8]] = []
        for batch in 0..<10 {
            let payloads = (0..<30).map { payload("batch \(batch) item \($0)", size: 97) }
            _ = try await store.append(contentsOf: payloads)
            written += payloads
        }
        let limits = DatastorePageLimits(maximumCount: 7, maximumBytes: 1_000)
        let entries = try await collect(store.records(after: 0, limits: limits))
        #expect(entries.map(\.payload) == written)
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.updateID < $1.updateID })
        // One page never exceeds its limits (beyond a single oversized record).
        let page = try await store.readRecords(after: 0, through: nil, limits: limits)
        #expect(page.count <= 7)
        #expect(page.dropLast().reduce(0) { $0 + $1.payload.count } < 1_000)
        let middle = entries[100].updateID
        let tail = try await collect(store.records(after: middle, through: entries[250].updateID, limits: limits))
        #expect(tail.map(\.payload) == Array(written[101...250]))
    }

    /// A batch gets increasing ids, in order, and reads back in order.
    func batchAppend() async throws {
        let store = try await makeStore()
        let first = try await store.append(payload("single"))
        let ids = try await store.append(contentsOf: (0..<10).map { payload("batch \($0)") })
        #expect(ids.count == 10)
        #expect(ids[0] > first)
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        #expect(try await store.append(contentsOf: []).isEmpty)
        let last = try await store.append(payload("after"))
        #expect(last > ids[9])
        let entries = try await collect(store.records(after: first))
        #expect(entries.map(\.updateID) == ids + [last])
        #expect(entries.map(\.payload) == (0..<10).map { payload("batch \($0)") } + [payload("after")])
    }

    /// Payloads of several MiB round-trip; oversized ones are refused whole.
    func largePayloads() async throws {
        let store = try await makeStore()
        let large = payload("large", size: 3 << 20)
        let id = try await store.append(large)
        #expect(try await collect(store.records(after: id - 1)).map(\.payload) == [large])
        let oversized = [UInt8](repeating: 1, count: WhyCacheLimits.maximumRecordSize + 1)
        await #expect(throws: DatastoreError.recordTooLarge(size: oversized.count, maximum: WhyCacheLimits.maximumRecordSize)) {
            _ = try await store.append(contentsOf: [payload("small"), oversized])
        }
        #expect(try await store.latestUpdateID() == id)
    }

    /// A checkpoint is invisible until published, then reads back in order.
    func checkpointPublishAndRead() async throws {
        let store = try await makeStore()
        let ids = try await store.append(contentsOf: (0..<10).map { payload("r\($0)") })
        let writer = try await store.beginCheckpoint(at: ids[9])
        #expect(writer.updateID == ids[9])
        let payloads = (0..<25).map { payload("checkpoint \($0)", size: 50) }
        for item in payloads { try await writer.append(item) }
        #expect(try await store.latestCheckpoint() == nil)
        let info = try await writer.publish()
        #expect(info == CheckpointInfo(updateID: ids[9], recordCount: 25, byteCount: UInt64(25 * 50)))
        #expect(try await store.latestCheckpoint() == info)
        let limits = DatastorePageLimits(maximumCount: 4, maximumBytes: 120)
        #expect(try await collect(store.checkpointRecords(info, limits: limits)) == payloads)
        #expect(try await collect(store.checkpointRecords(info)) == payloads)
        await #expect(throws: DatastoreError.self) { try await writer.append(payload("late")) }

        // A newer checkpoint becomes the latest; an empty checkpoint is allowed.
        let later = try await store.append(payload("later"))
        let second = try await store.beginCheckpoint(at: later)
        let empty = try await second.publish()
        #expect(empty == CheckpointInfo(updateID: later, recordCount: 0, byteCount: 0))
        #expect(try await store.latestCheckpoint() == empty)
        #expect(try await collect(store.checkpointRecords(empty)).isEmpty)
    }

    /// Abandoned and dropped writers leave no checkpoint behind.
    func checkpointAbandon() async throws {
        let store = try await makeStore()
        let id = try await store.append(payload("r"))
        let writer = try await store.beginCheckpoint(at: id)
        try await writer.append(payload("partial"))
        await writer.abandon()
        await writer.abandon()
        #expect(try await store.latestCheckpoint() == nil)
        await #expect(throws: DatastoreError.self) { try await writer.append(payload("late")) }
        await #expect(throws: DatastoreError.self) { _ = try await writer.publish() }
        do {
            let dropped = try await store.beginCheckpoint(at: id)
            try await dropped.append(payload("dropped"))
        }
        #expect(try await store.latestCheckpoint() == nil)
        let info = try await store.beginCheckpoint(at: id).publish()
        #expect(try await store.latestCheckpoint() == info)
    }

    /// A checkpoint must lie inside the log.
    func checkpointBounds() async throws {
        let store = try await makeStore()
        await #expect(throws: DatastoreError.self) { _ = try await store.beginCheckpoint(at: 1) }
        let id = try await store.append(payload("r"))
        await #expect(throws: DatastoreError.self) { _ = try await store.beginCheckpoint(at: 0) }
        await #expect(throws: DatastoreError.self) { _ = try await store.beginCheckpoint(at: id + 1) }
    }

    /// Records are only removed behind a checkpoint that covers them.
    func removeRecordsRequiresCheckpoint() async throws {
        let store = try await makeStore()
        let ids = try await store.append(contentsOf: (0..<10).map { payload("r\($0)") })
        await #expect(throws: DatastoreError.noCheckpointCovers(updateID: ids[4])) {
            try await store.removeRecords(through: ids[4])
        }
        _ = try await store.beginCheckpoint(at: ids[2]).publish()
        await #expect(throws: DatastoreError.noCheckpointCovers(updateID: ids[4])) {
            try await store.removeRecords(through: ids[4])
        }
        #expect(try await store.firstRetainedUpdateID() == 1)
        #expect(try await collect(store.records(after: 0)).count == 10)
    }

    /// After removal, reads from before the cut fail with `historyRewritten`
    /// (never a silent gap) and reads after it, and appends, go on.
    func removeRecordsRewritesHistory() async throws {
        let store = try await makeStore()
        var ids: [UInt64] = []
        for batch in 0..<6 {
            ids += try await store.append(contentsOf: (0..<10).map { payload("b\(batch) r\($0)", size: 200) })
        }
        let cut = ids[29]
        let writer = try await store.beginCheckpoint(at: cut)
        try await writer.append(payload("state"))
        _ = try await writer.publish()
        try await store.removeRecords(through: cut)
        #expect(try await store.firstRetainedUpdateID() == cut + 1)
        #expect(try await store.latestUpdateID() == ids[59])
        #expect(try await collect(store.records(after: cut)).map(\.updateID) == Array(ids[30...]))
        await #expect(throws: DatastoreError.historyRewritten(firstRetainedUpdateID: cut + 1)) {
            _ = try await store.readRecords(after: 0, through: nil, limits: .default)
        }
        await #expect(throws: DatastoreError.historyRewritten(firstRetainedUpdateID: cut + 1)) {
            _ = try await collect(store.records(after: cut - 1))
        }
        // Removing again, or less, changes nothing.
        try await store.removeRecords(through: cut)
        try await store.removeRecords(through: ids[3])
        #expect(try await store.firstRetainedUpdateID() == cut + 1)
        // Beyond the end of the log is refused even with a checkpoint.
        await #expect(throws: DatastoreError.self) { try await store.removeRecords(through: ids[59] + 10) }

        // Removing everything keeps the ids going.
        _ = try await store.beginCheckpoint(at: ids[59]).publish()
        try await store.removeRecords(through: ids[59])
        #expect(try await store.latestUpdateID() == ids[59])
        #expect(try await collect(store.records(after: ids[59])).isEmpty)
        let next = try await store.append(payload("next"))
        #expect(next > ids[59])
        #expect(try await collect(store.records(after: ids[59])).map(\.payload) == [payload("next")])
    }

    /// Old checkpoints can be deleted; the latest one stays.
    func removeCheckpoints() async throws {
        let store = try await makeStore()
        let ids = try await store.append(contentsOf: (0..<3).map { payload("r\($0)") })
        let first = try await store.beginCheckpoint(at: ids[0]).publish()
        let second = try await store.beginCheckpoint(at: ids[2]).publish()
        try await store.removeCheckpoints(before: ids[2])
        #expect(try await store.latestCheckpoint() == second)
        await #expect(throws: DatastoreError.checkpointNotFound(updateID: first.updateID)) {
            _ = try await collect(store.checkpointRecords(first))
        }
    }

    /// Only one holder of the maintenance lock at a time.
    func maintenanceLockIsExclusive() async throws {
        let store = try await makeStore()
        let lock = try await store.acquireMaintenanceLock()
        await #expect(throws: DatastoreError.maintenanceLockHeld) { _ = try await store.acquireMaintenanceLock() }
        await lock.release()
        let again = try await store.acquireMaintenanceLock()
        await again.release()
        await again.release()
        let last = try await store.acquireMaintenanceLock()
        await last.release()
    }

    /// Many tasks appending at once: every record is stored exactly once,
    /// under the id its append returned.
    func concurrentAppends() async throws {
        let store = try await makeStore()
        let tasks = 8
        let perTask = 40
        let results = try await withThrowingTaskGroup(of: [(UInt64, [UInt8])].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var assigned: [(UInt64, [UInt8])] = []
                    for index in 0..<perTask {
                        if index % 10 == 0 {
                            let batch = (0..<3).map { payload("task \(task) item \(index) part \($0)") }
                            assigned += zip(try await store.append(contentsOf: batch), batch).map { ($0, $1) }
                        } else {
                            let item = payload("task \(task) item \(index)")
                            assigned.append((try await store.append(item), item))
                        }
                    }
                    return assigned
                }
            }
            var all: [(UInt64, [UInt8])] = []
            for try await assigned in group { all += assigned }
            return all
        }
        let expectedCount = tasks * (perTask + perTask / 10 * 2)
        #expect(results.count == expectedCount)
        #expect(Set(results.map(\.0)).count == expectedCount)
        let entries = try await collect(store.records(after: 0))
        #expect(entries.count == expectedCount)
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.updateID < $1.updateID })
        let stored = Dictionary(uniqueKeysWithValues: entries.map { ($0.updateID, $0.payload) })
        for (id, item) in results {
            #expect(stored[id] == item)
        }
        #expect(try await store.latestUpdateID() == entries.last?.updateID)
    }

    // MARK: Helpers

    /// `text` followed by filler bytes up to `size` (when larger).
    func payload(_ text: String, size: Int = 0) -> [UInt8] {
        let head = Array(text.utf8)
        guard size > head.count else { return head }
        return head + (0..<size - head.count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ head.count) }
    }

    /// Everything a sequence yields.
    func collect<S: AsyncSequence>(_ sequence: S) async throws -> [S.Element] {
        var all: [S.Element] = []
        for try await element in sequence { all.append(element) }
        return all
    }
}
