import Glibc

/// Compacts a change log: replaces the records up to an update id by a
/// checkpoint of the state they produce, while writers keep appending and
/// machines keep updating.
///
/// ```swift
/// let rewriter = HistoryRewriter(datastore: log, scratchDirectory: "/var/tmp")
/// let report = try await rewriter.rewrite(keepingLast: 1_000)   // nil when the log holds 1,000 records or fewer
/// print(report.recordsBefore, "→", report.recordsAfter)
/// ```
///
/// ## How
/// 1. Take the log's maintenance lock: one rewrite per log at a time.
/// 2. Build the state at the limit in a scratch state file — the same
///    memory-mapped prefix tree the machines use, so memory stays bounded
///    however large the state is — by replaying the log (from the latest
///    checkpoint when the log's start was already removed).
/// 3. Check the scratch state whole (structure, key order, key count: a
///    damaged one is refused with nothing published or removed), then write
///    it as a checkpoint (records of sets, in key order, through the
///    `keeping` filter) and publish it.
/// 4. Remove the records through the checkpoint's id, then older checkpoints.
///
/// No id gaps are needed: the checkpoint lives beside the log, not in it.
/// Records after the limit are never touched, so concurrent appends are
/// neither lost nor reordered.
///
/// ## Machines at any position converge
/// A machine at or past the checkpoint's id goes on reading the log. A
/// machine behind it finds its next record removed; its `update()` rebuilds
/// its state from the checkpoint and switches its readers over atomically
/// (``SharedCache/update(through:)``). Keys deleted before the limit are
/// therefore gone on every machine. The filter is the only intended
/// divergence: keys it drops vanish from machines that rebuild, and stay on
/// machines that had them and never need to rebuild.
///
/// ## Crashes
/// Killed at any step, the log still yields the same state to every reader:
/// an unpublished checkpoint is invisible and reclaimed, and records are
/// removed only behind a published checkpoint. Running the rewrite again
/// completes the job.
public struct HistoryRewriter: Sendable {
    /// The log to compact.
    public let datastore: any Datastore

    /// Where the scratch state file is built (and deleted afterwards). It
    /// needs room for the whole state at the limit.
    public let scratchDirectory: String

    /// The options of the scratch state file and the records of the
    /// checkpoint (``SharedCache/Configuration/maximumRecordSize``). Its
    /// state file options may not subscribe to prefixes: the checkpoint
    /// replaces the log for every machine, so it holds every key.
    public let configuration: SharedCache.Configuration

    /// Creates a rewriter for `datastore`.
    public init(datastore: any Datastore, scratchDirectory: String, configuration: SharedCache.Configuration = .init()) {
        self.datastore = datastore
        self.scratchDirectory = scratchDirectory
        self.configuration = configuration
    }

    /// Rewrites the history of all but the newest `count` records: the
    /// limit is the log's newest id minus `count`, read when the call starts.
    /// A log of `count` records or fewer has nothing to rewrite; then the
    /// call changes nothing and returns `nil`.
    ///
    /// ```swift
    /// try await HistoryRewriter(datastore: log, scratchDirectory: "/var/tmp").rewrite(keepingLast: 10_000)
    /// ```
    ///
    /// - Parameters: see ``rewrite(through:keeping:progress:)``.
    /// - Throws: see ``rewrite(through:keeping:progress:)``.
    @discardableResult
    public func rewrite(
        keepingLast count: UInt64,
        keeping filter: (@Sendable ([UInt8]) -> Bool)? = nil,
        progress: ((HistoryRewriteProgress) -> Void)? = nil
    ) async throws(CacheError) -> HistoryRewriteReport? {
        let latest: UInt64
        do { latest = try await datastore.latestUpdateID() } catch { throw .datastore(error) }
        guard latest > count else { return nil }
        return try await rewrite(through: latest - count, keeping: filter, progress: progress)
    }

    /// Rewrites the history through `limit`: the checkpoint holds the effect
    /// of every record up to `limit` that the log holds.
    ///
    /// - Parameters:
    ///   - limit: The newest record whose effect moves into the checkpoint;
    ///     between 1 and the newest id.
    ///   - filter: Keys for which it returns `false` are left out of the
    ///     checkpoint. `nil` keeps every key.
    ///   - progress: Called at each step, from the calling task.
    /// - Throws: ``CacheError/invalidConfiguration(reason:)`` when
    ///   ``configuration`` subscribes to prefixes;
    ///   ``CacheError/datastore(_:)`` with
    ///   ``DatastoreError/maintenanceLockHeld`` when another rewrite runs, or
    ///   ``DatastoreError/invalidRequest(reason:)`` for a limit outside the
    ///   log; any datastore, state file or corrupt-record error. Nothing is
    ///   removed from the log unless the checkpoint was published.
    public func rewrite(
        through limit: UInt64,
        keeping filter: (@Sendable ([UInt8]) -> Bool)? = nil,
        progress: ((HistoryRewriteProgress) -> Void)? = nil
    ) async throws(CacheError) -> HistoryRewriteReport {
        guard KeyPrefixes(canonicalizing: configuration.stateFileOptions.subscribedPrefixes).isEverything else {
            throw .invalidConfiguration(
                reason: "a history rewrite checkpoints every key of the log; its state file options may not subscribe to prefixes")
        }
        let lock: any DatastoreMaintenanceLock
        do { lock = try await datastore.acquireMaintenanceLock() } catch { throw .datastore(error) }
        do throws(CacheError) {
            let report = try await rewriteHoldingLock(through: limit, keeping: filter, progress: progress)
            await lock.release()
            return report
        } catch {
            await lock.release()
            throw error
        }
    }

    /// What the scratch file's name starts with, before the process id.
    static let scratchPrefix = "whycache-rewrite."

    // MARK: Steps

    private func rewriteHoldingLock(
        through limit: UInt64, keeping filter: (@Sendable ([UInt8]) -> Bool)?, progress: ((HistoryRewriteProgress) -> Void)?
    ) async throws(CacheError) -> HistoryRewriteReport {
        // Scratch files of rewrites that were killed are deleted first.
        AbandonedFiles.remove(in: scratchDirectory, prefix: Self.scratchPrefix)
        let latest = try await call { () async throws(DatastoreError) in try await datastore.latestUpdateID() }
        guard limit >= 1, limit <= latest else {
            let held = latest == 0 ? "the log is empty" : "the log holds ids 1...\(latest)"
            throw .datastore(.invalidRequest(reason: "cannot rewrite history through \(limit): \(held)"))
        }
        let firstRetained = try await call { () async throws(DatastoreError) in try await datastore.firstRetainedUpdateID() }
        guard limit >= firstRetained else {
            // Already removed through `limit` by an earlier rewrite; a removal
            // that was interrupted midway is finished.
            try await call { () async throws(DatastoreError) in try await datastore.removeRecords(through: limit) }
            progress?(.measuring)
            let log = try await measureLog(after: firstRetained - 1)
            return HistoryRewriteReport(
                checkpoint: try await call { () async throws(DatastoreError) in try await datastore.latestCheckpoint() },
                recordsBefore: log.records, bytesBefore: log.bytes, recordsAfter: log.records, bytesAfter: log.bytes, keysDropped: 0)
        }

        // The state through the limit, from the checkpoint that replaced the
        // log's start (if any): all records up to `limit` that the log holds.
        var startingCheckpoint: CheckpointInfo?
        if firstRetained > 1 {
            startingCheckpoint = try await call { () async throws(DatastoreError) in try await datastore.latestCheckpoint() }
            guard let checkpoint = startingCheckpoint, checkpoint.leavesNoGap(beforeFirstRetained: firstRetained), checkpoint.updateID <= limit else {
                throw .datastore(.invalidRequest(reason: "no checkpoint covers the removed start of the log (records from \(firstRetained) remain)"))
            }
        }
        let scratchPath = AbandonedFiles.temporaryPath(prefix: "\(scratchDirectory)/\(Self.scratchPrefix)")
        defer { try? SharedStateFile.remove(at: scratchPath) }
        let scratch = try SharedCache.openStateFile(at: scratchPath, configuration: configuration)
        progress?(.building(through: limit))
        // In key order, so that neither the build nor the checkpoint's walk
        // keeps the scratch file resident (see SortedStateBuilder).
        let built = try await SortedStateBuilder(datastore: datastore, configuration: configuration)
            .build(into: scratch, from: startingCheckpoint, through: limit, runPrefix: scratchPath + ".run")

        progress?(.writingCheckpoint(at: limit))
        let (checkpoint, dropped) = try await writeCheckpoint(of: scratch, at: limit, keeping: filter)
        progress?(.removingRecords(through: limit))
        try await call { () async throws(DatastoreError) in
            try await datastore.removeRecords(through: limit)
            try await datastore.removeCheckpoints(before: limit)
        }
        // The records after the limit stay; the build already counted the
        // ones it read, so the log is read only once more, from the limit.
        progress?(.measuring)
        let kept = try await measureLog(after: limit)
        progress?(.finished)
        return HistoryRewriteReport(
            checkpoint: checkpoint, recordsBefore: built.logRecords + kept.records, bytesBefore: built.logBytes + kept.bytes,
            recordsAfter: kept.records, bytesAfter: kept.bytes + checkpoint.byteCount, keysDropped: dropped)
    }

    /// Writes the state of `scratch` as a checkpoint at `updateID` and
    /// publishes it; returns it and the number of keys the filter dropped.
    /// Holds at most about eight records' worth of operations in memory.
    private func writeCheckpoint(
        of scratch: SharedStateFile, at updateID: UInt64, keeping filter: (@Sendable ([UInt8]) -> Bool)?
    ) async throws(CacheError) -> (CheckpointInfo, Int) {
        let splitter: LogRecordSplitter
        do { splitter = try LogRecordSplitter(maximumRecordSize: configuration.maximumRecordSize) } catch {
            throw .invalidConfiguration(reason: "\(error)")
        }
        let writer = try await call { () async throws(DatastoreError) in try await datastore.beginCheckpoint(at: updateID) }
        do throws(CacheError) {
            let snapshot: StateSnapshot
            do { snapshot = try scratch.snapshot() } catch { throw CacheError(error) }
            defer { snapshot.close() }
            // A damaged scratch state (a failing disk, a bug) must not become
            // the checkpoint every rebuilding machine starts from: it is
            // checked whole first, and nothing is published or removed.
            do { _ = try snapshot.verify() } catch { throw CacheError(error) }
            var cursor = snapshot.makeCursor()
            var pending: [LogOperation] = []
            var pendingBytes = 0
            var dropped = 0
            var bytesSinceRelease = 0
            while true {
                let entry: (key: [UInt8], value: [UInt8])?
                do { entry = try cursor.next() } catch { throw CacheError(error) }
                if let entry {
                    // The walk moves through the file in order (the builder
                    // inserted in key order): what it left behind can go.
                    bytesSinceRelease += entry.key.count + entry.value.count
                    if bytesSinceRelease >= 32 << 20 {
                        scratch.releaseResidentPages()
                        bytesSinceRelease = 0
                    }
                    if let filter, !filter(entry.key) {
                        dropped += 1
                        continue
                    }
                    pending.append(.set(key: entry.key, value: entry.value))
                    pendingBytes += entry.key.count + entry.value.count
                }
                // Split eight records' worth at a time: only the last record of
                // each split is partly filled.
                guard entry == nil || pendingBytes >= 8 * splitter.maximumRecordSize else { continue }
                let payloads: [[UInt8]]
                do { payloads = try splitter.split(pending) } catch { throw .invalidConfiguration(reason: "\(error)") }
                for payload in payloads {
                    try await call { () async throws(DatastoreError) in try await writer.append(payload) }
                }
                pending.removeAll(keepingCapacity: true)
                pendingBytes = 0
                if entry == nil { break }
            }
            let checkpoint = try await call { () async throws(DatastoreError) in try await writer.publish() }
            return (checkpoint, dropped)
        } catch {
            await writer.abandon()
            throw error
        }
    }

    /// The number of records and payload bytes the log holds after `position`.
    private func measureLog(after position: UInt64) async throws(CacheError) -> (records: UInt64, bytes: UInt64) {
        var records: UInt64 = 0
        var bytes: UInt64 = 0
        do {
            for try await entry in datastore.records(after: position, limits: configuration.readPageLimits) {
                records += 1
                bytes += UInt64(entry.payload.count)
            }
        } catch {
            throw .datastore(error)
        }
        return (records, bytes)
    }

    /// Runs a datastore call, wrapping its error.
    private func call<T>(_ body: () async throws(DatastoreError) -> T) async throws(CacheError) -> T {
        do { return try await body() } catch { throw .datastore(error) }
    }
}

/// The steps of ``HistoryRewriter/rewrite(through:keeping:progress:)``, in order.
public enum HistoryRewriteProgress: Sendable, Hashable {
    /// Building the state through the limit in the scratch file.
    case building(through: UInt64)
    /// Writing the checkpoint at this update id.
    case writingCheckpoint(at: UInt64)
    /// Removing the records the checkpoint replaces.
    case removingRecords(through: UInt64)
    /// Counting the records and bytes of the log that stay.
    case measuring
    /// Done.
    case finished
}

/// What a history rewrite did.
public struct HistoryRewriteReport: Sendable, Hashable {
    /// The checkpoint that now replaces the removed records (`nil` only when
    /// nothing was to be done and the log has no checkpoint).
    public var checkpoint: CheckpointInfo?

    /// The records the log held before (those through the limit that it
    /// still held, plus those after it).
    public var recordsBefore: UInt64

    /// The payload bytes of ``recordsBefore``.
    public var bytesBefore: UInt64

    /// The records the log holds after: those after the limit.
    public var recordsAfter: UInt64

    /// The payload bytes of ``recordsAfter`` plus the new checkpoint's.
    public var bytesAfter: UInt64

    /// Keys the filter left out of the checkpoint.
    public var keysDropped: Int
}
