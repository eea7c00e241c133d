import Synchronization
import Glibc

/// The embedded datastore: a change log kept in a directory of append-only
/// segment files, shared by every process on one machine.
///
/// ```swift
/// let store = try FileDatastore(directory: "/var/lib/myapp/log")
/// try await store.createIfMissing()
/// let id = try await store.append(try LogRecord([.set(key: key, value: value)]).encoded())
/// for try await entry in store.records(after: 0) { … }
/// ```
///
/// ## Concurrency and crashes
/// Any number of processes, and tasks within them, may append at once. Appends
/// are serialized by an exclusive `flock` on `append.lock`, which the kernel
/// releases when its holder dies, so ids are assigned contiguously with none
/// lost or repeated. Within one process appends also pass through one serial
/// queue (threads sharing a descriptor are not excluded by `flock`), which
/// batches the appends waiting at the same time into one write and one
/// `fdatasync` (group commit).
///
/// A writer killed in the middle of an append leaves at most an unfinished
/// frame at the end of the last segment. Readers treat it as not written yet;
/// the next appender truncates it while holding the lock. An invalid frame
/// that is followed by more data is corruption and is reported as
/// ``DatastoreError/corruptRecord(location:updateID:reason:)``.
///
/// ## Threads
/// File I/O, `fdatasync` and `flock` block, so they run on two Dispatch
/// queues owned by the datastore — a serial one for everything done under the
/// append lock and a concurrent one for reads — never on Swift's cooperative
/// thread pool.
///
/// ## Reading
/// Each process remembers, per segment, a sparse index of verified frame
/// positions (about one per 64 KiB) and where the verified part ends, so a
/// read starts close to the first record it needs and a reader following the
/// end of the log reads only new bytes. The directory is listed only when a
/// needed segment is unknown.
///
/// The layout on disk is described byte by byte in `docs/FORMAT.md`.
public final class FileDatastore: Datastore {
    /// The directory holding the datastore's files.
    public let directory: String

    /// The options the datastore was created with.
    public let options: FileDatastoreOptions

    private let layout: FileDatastoreLayout
    private let log: SegmentLog

    /// Runs work done under the append lock, one item at a time.
    private let serialIO: BlockingIOQueue

    /// Runs reads and other work that needs no lock.
    private let concurrentIO: BlockingIOQueue

    /// The descriptor through which `append.lock` is locked; opened on first
    /// use and only used on `serialIO`.
    private let appendLockFile = Locked<DatastoreFile?>(nil)

    /// Appends waiting for the next group commit.
    private let pendingAppends = Locked<[PendingAppend]>([])

    /// Whether the metadata file was found valid once.
    private let verified = Atomic<Bool>(false)

    /// The most payload bytes one group commit writes.
    private static let groupCommitBytes = 16 << 20

    private struct PendingAppend: Sendable {
        var payloads: [[UInt8]]
        var continuation: CheckedContinuation<Result<[UInt64], DatastoreError>, Never>
    }

    /// Creates a datastore for `directory` without touching the disk.
    ///
    /// Call ``createIfMissing()`` to initialize a new directory, or use
    /// ``open(directory:options:)`` to check that it already is a datastore.
    ///
    /// - Throws: ``DatastoreError/invalidConfiguration(reason:)`` for unusable options.
    public init(directory: String, options: FileDatastoreOptions = FileDatastoreOptions()) throws(DatastoreError) {
        try options.validate()
        guard !directory.isEmpty else { throw .invalidConfiguration(reason: "the directory path is empty") }
        self.directory = directory
        self.options = options
        self.layout = FileDatastoreLayout(directory: directory)
        self.log = SegmentLog(layout: layout, options: options)
        self.serialIO = BlockingIOQueue(label: "WhyCache.FileDatastore.serial", concurrent: false)
        self.concurrentIO = BlockingIOQueue(label: "WhyCache.FileDatastore.concurrent", concurrent: true)
    }

    deinit {
        appendLockFile.withLock { $0?.close() }
    }

    /// Opens an existing datastore.
    ///
    /// - Throws: ``DatastoreError/notADatastore(path:reason:)`` when `directory`
    ///   is not an initialized file datastore.
    public static func open(
        directory: String, options: FileDatastoreOptions = FileDatastoreOptions()
    ) async throws(DatastoreError) -> FileDatastore {
        let store = try FileDatastore(directory: directory, options: options)
        try await store.concurrentIO.run { () throws(DatastoreError) in try store.verify() }
        return store
    }

    // MARK: Datastore

    /// Creates the directory, its metadata file, lock files and first segment
    /// if they do not exist.
    ///
    /// - Throws: ``DatastoreError/notADatastore(path:reason:)`` when the
    ///   directory holds files that are not the datastore's.
    public func createIfMissing() async throws(DatastoreError) {
        try await serialIO.run { () throws(DatastoreError) in
            let layout = self.layout
            try DatastoreFileSystem.makeDirectories(layout.directory)
            if DatastoreFileSystem.exists(layout.metadataPath) {
                try self.verify()
                return
            }
            let foreign = try DatastoreFileSystem.contents(of: layout.directory).filter { !FileDatastoreLayout.isDatastoreFile($0) }
            guard foreign.isEmpty else {
                throw .notADatastore(path: layout.directory, reason: "it holds other files (\(foreign.sorted().prefix(3).joined(separator: ", ")))")
            }
            try self.withAppendLock { () throws(DatastoreError) in
                // Another process may have finished the initialization while this one waited.
                guard !DatastoreFileSystem.exists(layout.metadataPath) else { return }
                if try layout.segmentIDs().isEmpty { try self.log.createSegment(1) }
                // The metadata file comes last: its presence means "initialized".
                try DatastoreMetadata(removedThrough: 0).write(layout, durable: self.options.syncPolicy == .always)
            }
            try self.verify()
        }
    }

    public func latestUpdateID() async throws(DatastoreError) -> UInt64 {
        try await concurrentIO.run { () throws(DatastoreError) -> UInt64 in
            try self.verifyOnce()
            return try self.checkedEnd()
        }
    }

    public func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64 {
        try await concurrentIO.run { () throws(DatastoreError) -> UInt64 in
            try DatastoreMetadata.read(self.layout).removedThrough + 1
        }
    }

    public func readRecords(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> [LogEntry] {
        try await readPage(after: after, through: through, limits: limits).entries
    }

    /// One page of ``readRecords(after:through:limits:)`` with the payload
    /// checksum of the record `after` when the segment read passes it or this
    /// process recorded it (``LogPage/precedingRecordChecksum``). The log's
    /// end is not reported: reading it is a local file operation.
    public func readPage(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage {
        try await concurrentIO.run { () throws(DatastoreError) -> LogPage in
            // History is checked before and after reading: records removed while
            // this page was read are reported as removed, never returned.
            try self.checkRetained(after: after)
            let read: (entries: [LogEntry], checksumOfAfter: UInt32?)
            do throws(DatastoreError) {
                read = try self.log.read(after: after, through: through, limits: limits)
            } catch {
                try self.checkRetained(after: after)
                throw error
            }
            try self.checkRetained(after: after)
            return LogPage(entries: read.entries, precedingRecordChecksum: read.checksumOfAfter)
        }
    }

    public func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        for payload in payloads where payload.count > WhyCacheLimits.maximumRecordSize {
            throw .recordTooLarge(size: payload.count, maximum: WhyCacheLimits.maximumRecordSize)
        }
        guard !payloads.isEmpty else { return [] }
        let result = await withCheckedContinuation { continuation in
            pendingAppends.withLock { $0.append(PendingAppend(payloads: payloads, continuation: continuation)) }
            serialIO.queue.async { self.commitPendingAppends() }
        }
        return try result.get()
    }

    public func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo? {
        try await concurrentIO.run { () throws(DatastoreError) -> CheckpointInfo? in
            try self.verifyOnce()
            return try CheckpointFile.latest(in: self.layout)
        }
    }

    public func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter {
        let latest = try await latestUpdateID()
        guard updateID >= 1, updateID <= latest else {
            throw .invalidRequest(reason: "a checkpoint at update \(updateID) is outside the log (1...\(latest))")
        }
        let durable = options.syncPolicy == .always
        return try await concurrentIO.run { () throws(DatastoreError) -> FileCheckpointWriter in
            try self.removeAbandonedFiles()
            return try FileCheckpointWriter.create(updateID: updateID, layout: self.layout, durable: durable, io: self.concurrentIO)
        }
    }

    public func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        let chunkSize = options.readChunkSize
        let page = try await concurrentIO.run { () throws(DatastoreError) -> CheckpointPage in
            let page = try CheckpointFile.read(checkpoint, in: self.layout, from: position, limits: limits, chunkSize: chunkSize)
            return CheckpointPage(payloads: page.payloads, next: page.next)
        }
        return (page.payloads, page.next)
    }

    public func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError) {
        try await concurrentIO.run { () throws(DatastoreError) in
            try self.verifyOnce()
            for id in try self.layout.checkpointIDs() where id < updateID {
                try DatastoreFileSystem.remove(self.layout.checkpointPath(id))
            }
        }
    }

    public func removeRecords(through updateID: UInt64) async throws(DatastoreError) {
        guard updateID > 0 else { return }
        try await serialIO.run { () throws(DatastoreError) in
            try self.verifyOnce()
            try self.withAppendLock { () throws(DatastoreError) in
                let layout = self.layout
                let metadata = try DatastoreMetadata.read(layout)
                guard updateID > metadata.removedThrough else {
                    // Finishes a removal that was interrupted after the metadata was written.
                    try self.log.removeSegments(through: metadata.removedThrough)
                    return
                }
                guard let checkpoint = try CheckpointFile.latest(in: layout), checkpoint.updateID >= updateID else {
                    throw .noCheckpointCovers(updateID: updateID)
                }
                let latest = try self.log.tail().nextID - 1
                guard updateID <= latest else {
                    throw .invalidRequest(reason: "cannot remove records through \(updateID): the newest record is \(latest)")
                }
                // Readers learn about the removal from the metadata before any segment disappears.
                try DatastoreMetadata(removedThrough: updateID).write(layout, durable: self.options.syncPolicy == .always)
                try self.log.removeSegments(through: updateID)
            }
        }
    }

    public func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock {
        try await concurrentIO.run { () throws(DatastoreError) -> FileMaintenanceLock in
            try self.verifyOnce()
            return try FileMaintenanceLock.acquire(self.layout)
        }
    }

    // MARK: Helpers (blocking; called on the I/O queues)

    /// Writes every pending append in one batch under the append lock and
    /// resumes their callers. Runs on `serialIO`.
    private func commitPendingAppends() {
        let batch = pendingAppends.withLock { pending -> [PendingAppend] in
            var bytes = 0
            var count = 0
            while count < pending.count && (count == 0 || bytes < Self.groupCommitBytes) {
                bytes += pending[count].payloads.reduce(0) { $0 + $1.count }
                count += 1
            }
            defer { pending.removeFirst(count) }
            return Array(pending.prefix(count))
        }
        guard !batch.isEmpty else { return }
        let result = Result { () throws(DatastoreError) -> [UInt64] in
            try self.verifyOnce()
            return try self.withAppendLock { () throws(DatastoreError) -> [UInt64] in
                _ = try self.checkedEnd()
                return try self.log.append(batch.flatMap(\.payloads))
            }
        }
        var start = 0
        for append in batch {
            let count = append.payloads.count
            append.continuation.resume(returning: result.map { Array($0[start..<start + count]) })
            start += count
        }
    }

    /// Runs `body` holding the cross-process append lock. Runs on `serialIO`,
    /// which also keeps the threads of this process out of each other's way.
    private func withAppendLock<T>(_ body: () throws(DatastoreError) -> T) throws(DatastoreError) -> T {
        let file = try appendLockFile.withLock { (file: inout DatastoreFile?) throws(DatastoreError) -> DatastoreFile in
            if let file { return file }
            let opened = try DatastoreFile.open(layout.appendLockPath, flags: O_RDWR | O_CREAT)
            file = opened
            return opened
        }
        try file.lockExclusively(wait: true)
        defer { file.unlock() }
        return try body()
    }

    /// The id of the log's last record, after checking that the segments
    /// reach every id that history removal or a checkpoint says existed.
    ///
    /// A log whose segments end below its `removedThrough` or its newest
    /// checkpoint has lost records (files deleted or truncated by hand):
    /// appending to it would hand out ids that readers have already seen.
    ///
    /// - Throws: ``DatastoreError/corruptRecord(location:updateID:reason:)``
    ///   for such a log.
    private func checkedEnd() throws(DatastoreError) -> UInt64 {
        let end = try log.tail().nextID - 1
        let removedThrough = try DatastoreMetadata.read(layout).removedThrough
        let checkpoint = try CheckpointFile.latest(in: layout)?.updateID ?? 0
        let known = max(removedThrough, checkpoint)
        guard end >= known else {
            let witness = checkpoint >= removedThrough ? "a checkpoint at update \(checkpoint)" : "history removed through update \(removedThrough)"
            throw .corruptRecord(
                location: layout.directory, updateID: end + 1,
                reason: "the log's segments end at update \(end), but \(witness) exists: records are missing, and appending would reuse their ids")
        }
        return end
    }

    /// Throws ``DatastoreError/historyRewritten(firstRetainedUpdateID:)`` when
    /// the record after `after` was removed.
    private func checkRetained(after: UInt64) throws(DatastoreError) {
        let metadata = try DatastoreMetadata.read(layout)
        if after < metadata.removedThrough {
            throw .historyRewritten(firstRetainedUpdateID: metadata.removedThrough + 1)
        }
    }

    /// Checks the metadata file the first time the datastore is used.
    private func verifyOnce() throws(DatastoreError) {
        if verified.load(ordering: .acquiring) { return }
        try verify()
    }

    /// Checks that the directory is an initialized datastore.
    private func verify() throws(DatastoreError) {
        _ = try DatastoreMetadata.read(layout)
        verified.store(true, ordering: .releasing)
    }

    /// Deletes temporary files left behind by processes that died while
    /// writing them: checkpoint files nobody holds a lock on, and other
    /// temporary files of processes that no longer exist.
    private func removeAbandonedFiles() throws(DatastoreError) {
        for path in try layout.temporaryFiles() {
            if path.contains(FileDatastoreLayout.checkpointSuffix + FileDatastoreLayout.temporaryMarker) {
                guard let file = try DatastoreFile.openIfExists(path, flags: O_RDWR) else { continue }
                defer { file.close() }
                if try file.lockExclusively(wait: false) { try DatastoreFileSystem.remove(path) }
            } else if let owner = FileDatastoreLayout.owner(ofTemporaryFile: path), Processes.isGone(owner) {
                try DatastoreFileSystem.remove(path)
            }
        }
    }
}

/// A page of checkpoint payloads, passed back from an I/O queue.
private struct CheckpointPage: Sendable {
    var payloads: [[UInt8]]
    var next: CheckpointPosition?
}
