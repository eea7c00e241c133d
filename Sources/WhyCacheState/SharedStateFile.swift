import Glibc
import WhyCacheSupport

/// An ordered map from byte-string keys to byte-string values, plus the log
/// position (update id) it corresponds to, kept in one memory-mapped file that
/// any number of processes and threads use at once.
///
/// - Reads (``value(forKey:)``, ``withValue(forKey:_:)-(_,(UnsafeRawBufferPointer?)->Result)``, ``contains(_:)``,
///   ``snapshot()``) never lock, never wait for a writer and never block one.
///   Each read sees one committed state; a ``StateSnapshot`` extends that to
///   any number of reads and iterations.
/// - Writes go through a `WriteTransaction`: one writer at a time across all
///   processes, all-or-nothing publication.
/// - A process killed at any instruction, reader or writer, leaves the file
///   holding the state before or after the interrupted transaction.
///
/// The file is a cache of the change log, never the only copy of anything:
/// when it is damaged (an error such as ``StateFileError/corrupted(path:reason:)``),
/// discard it with ``remove(at:)`` and rebuild it from the log.
///
/// The mapping is released when the last reference to the instance (and to
/// every snapshot taken from it) goes away.
///
/// See docs/FORMAT.md for the file format and its crash-safety argument.
public final class SharedStateFile: Sendable, KeyValueReading {
    /// The path the file was opened at.
    public let path: String
    let mapped: MappedFile
    let readers: ReaderTable

    private init(mapped: MappedFile) {
        self.path = mapped.path
        self.mapped = mapped
        self.readers = ReaderTable(file: mapped)
    }

    /// Opens the state file at `path`, creating an empty one (update id 0) if
    /// none exists and `options.createIfMissing` is set. Any number of
    /// processes may do this at the same moment: all of them end up sharing
    /// one file.
    public static func open(at path: String, options: Options = Options()) throws(StateFileError) -> SharedStateFile {
        if let problem = options.problem { throw .invalidOptions(reason: problem) }
        return try validated(SharedStateFile(mapped: try MappedFile.openOrCreate(path: path, options: options)))
    }

    /// Opens the state file at `path`, or returns nil when there is none
    /// (``open(at:options:)`` with default options that do not create it).
    package static func openIfExists(at path: String) throws(StateFileError) -> SharedStateFile? {
        guard let mapped = try MappedFile.openIfExists(path: path) else { return nil }
        return try validated(SharedStateFile(mapped: mapped))
    }

    /// `file`, once its current commit is checked, so that a damaged file
    /// fails at open.
    private static func validated(_ file: SharedStateFile) throws(StateFileError) -> SharedStateFile {
        let path = file.path
        let pin = try file.readers.pin()
        file.readers.unpin(pin)
        let commit = try CommitRecord(at: pin.commitOffset, in: file.mapped)
        if commit.bootID != .zero, BootID.current != .zero, commit.bootID != BootID.current {
            throw .notDurableAcrossRestart(path: path)
        }
        return file
    }

    /// The key prefixes the file subscribes to, in canonical form (sorted,
    /// none starting another), read from its header: the file holds only
    /// keys that start with one of them. Empty: every key. Fixed at creation
    /// (``Options/subscribedPrefixes``).
    public var subscribedPrefixes: [[UInt8]] { mapped.subscription.prefixes }

    /// The keys the file keeps (``subscribedPrefixes`` as a set with its
    /// allocation-free membership test), for the layers that filter keys.
    package var subscription: KeyPrefixes { mapped.subscription }

    /// The 16-byte identity of the file, fixed at creation (the raw form of
    /// ``fileIdentifier``).
    package var fileIdentity: (UInt64, UInt64) { mapped.fileIdentifier }

    /// A 16-byte random identity given to the file when it was created, as hex.
    public var fileIdentifier: String {
        let (high, low) = mapped.fileIdentifier
        return Hex.encode(high) + Hex.encode(low)
    }

    // MARK: Reading

    /// Pins the current state for any number of consistent reads.
    public func snapshot() throws(StateFileError) -> StateSnapshot {
        StateSnapshot(file: self, pin: try readers.pin())
    }

    /// The update id of the current state.
    public func updateID() throws(StateFileError) -> UInt64 {
        let pin = try readers.pin()
        defer { readers.unpin(pin) }
        return pin.updateID
    }

    /// Calls `body` with the value under the borrowed `key` in the current
    /// state as a buffer in shared memory (no copy), or with nil: the read
    /// every other form goes through (``KeyValueReading``). The fastest
    /// read: no allocation.
    ///
    /// - Parameters:
    ///   - key: the key's bytes, 1 to ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    ///   - body: what to do with the value; it may throw a ``StateFileError`` of its own.
    /// - Throws: a ``StateFileError`` for an invalid key or a damaged file,
    ///   or the one `body` throws.
    public func withValue<Result>(
        forKeyBytes key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws(StateFileError) -> Result
    ) throws(StateFileError) -> Result {
        try Self.validate(key: key)
        let pin = try readers.pin()
        defer { readers.unpin(pin) }
        return try body(TrieReader(file: mapped, heapEnd: pin.heapEnd).lookup(key, root: pin.root))
    }

    /// Copies the value under the borrowed `key` into `buffer` (as much of
    /// it as fits) and returns the value's full length, or nil when the key is
    /// absent. No allocation and no closure: the read for hot loops.
    public func copyValue(forKeyBytes key: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer) throws(StateFileError) -> Int? {
        try withValue(forKeyBytes: key) { (value) throws(StateFileError) -> Int? in
            guard let value else { return nil }
            let count = min(value.count, buffer.count)
            if count > 0 { buffer.baseAddress!.copyMemory(from: value.baseAddress!, byteCount: count) }
            return value.count
        }
    }

    /// Throws unless `key` has a valid length.
    @inline(__always)
    static func validate(key: UnsafeRawBufferPointer) throws(StateFileError) {
        guard key.count >= WhyCacheLimits.minimumKeyLength, key.count <= WhyCacheLimits.maximumKeyLength else {
            throw .invalidKeyLength(key.count)
        }
    }

    // MARK: Writing

    /// Starts a write transaction, waiting for the writer lock if another
    /// thread or process holds it. Do not call from a Swift concurrency task
    /// that must not block; use ``tryBeginWrite()`` there.
    package func beginWrite() throws(StateFileError) -> WriteTransaction {
        try beginWrite(holding: waitForWriterLock())
    }

    /// Starts a write transaction if no other writer holds the lock; nil otherwise.
    package func tryBeginWrite() throws(StateFileError) -> WriteTransaction? {
        guard let lock = try mapped.tryLockWriter() else { return nil }
        return try makeTransaction(lock: lock)
    }

    /// How many descriptors of this file, unlocked, wait for this process's
    /// next writer (each writer takes one, or opens one when none waits, and
    /// gives it back when it ends).
    package var spareWriterLockDescriptors: Int { mapped.spareLockDescriptorCount }

    /// Waits for the writer lock and returns it as a token for
    /// ``beginWrite(holding:)``, so that the wait can happen on a thread that
    /// may block while the transaction is used from a Swift task.
    package func waitForWriterLock() throws(StateFileError) -> WriterLockToken {
        WriterLockToken(descriptor: try mapped.lockWriter())
    }

    /// Starts a write transaction under a lock taken by ``waitForWriterLock()``
    /// on this file. The lock is released when the transaction finishes, or
    /// at once when starting fails.
    package func beginWrite(holding token: WriterLockToken) throws(StateFileError) -> WriteTransaction {
        try makeTransaction(lock: token.descriptor)
    }

    /// Runs `body` in a write transaction and commits it when `body` returns;
    /// abandons it when `body` throws.
    package func write<Result>(_ body: (WriteTransaction) throws -> Result) throws -> Result {
        let transaction = try beginWrite()
        do {
            let result = try body(transaction)
            try transaction.commit()
            return result
        } catch {
            transaction.abandon()
            throw error
        }
    }

    /// Starts a transaction under the writer lock `lock` (released on failure).
    private func makeTransaction(lock: StateFileDescriptor) throws(StateFileError) -> WriteTransaction {
        do {
            let offset = Int(mapped.atomicWord(at: FileLayout.currentCommitOffset).load(ordering: .sequentiallyConsistent))
            let commit = try CommitRecord(at: offset, in: mapped)
            try SpaceAllocator.prepareWriterArea(file: mapped, commit: commit, commitOffset: offset)
            let transaction = commit.transaction + 1
            mapped.setWord(transaction, at: FileLayout.writerDirtyOffset)
            var allocator = SpaceAllocator(file: mapped, transaction: transaction)
            let newest = allocator.newestRetiredTransaction
            if newest != 0 {
                let oldest = readers.oldestPinned(checkingLivenessBelow: newest + 1)
                try allocator.reclaim(oldestPinned: oldest)
            }
            return WriteTransaction(file: self, lock: lock, base: commit, baseOffset: offset, allocator: allocator)
        } catch {
            mapped.unlockWriter(lock)
            throw error
        }
    }

    // MARK: The poller lease

    /// Takes the poller lease of this file for this open file (this object),
    /// unless another open file — of another process, or another
    /// ``SharedStateFile`` of this one — holds it; returns whether this object
    /// holds it now (true also when it already did). docs/FORMAT.md section
    /// 1.10: the holder's updater is the one that reads the datastore on the
    /// interval for every process of the file. The lease belongs to this
    /// file (inode), not to the path: a file installed at the path has a
    /// lease of its own. The kernel releases it when this object's descriptor
    /// is closed (the object is released) or the process dies.
    ///
    /// - Throws: ``StateFileError/systemCallFailed(call:path:errno:)`` when
    ///   the lock cannot be asked for (not when another file holds it).
    package func tryTakePollerLease() throws(StateFileError) -> Bool {
        try mapped.tryTakePollerLease()
    }

    /// Gives the poller lease up if this object holds it, so that another
    /// process can take it at its next try.
    package func releasePollerLease() {
        mapped.releasePollerLease()
    }

    /// Whether this object holds the poller lease (see ``tryTakePollerLease()``).
    var holdsPollerLease: Bool {
        mapped.holdsPollerLease
    }

    // MARK: Maintenance

    /// Counters describing the file, for monitoring.
    public func statistics() throws(StateFileError) -> StateFileStatistics {
        let pin = try readers.pin()
        defer { readers.unpin(pin) }
        func shared(_ offset: Int) -> Int {
            Int(truncatingIfNeeded: mapped.atomicWord(at: offset).load(ordering: .relaxed))
        }
        return StateFileStatistics(
            updateID: pin.updateID, keyCount: Int(pin.keyCount), transaction: pin.transaction,
            fileSize: try mapped.currentSize(), heapBytes: pin.heapEnd - mapped.heapStart,
            freeBytes: shared(FileLayout.freeBytesOffset), retiredBytes: shared(FileLayout.pendingBytesOffset),
            readerSlotsInUse: readers.ownedSlotCount(), liveReaderProcesses: readers.liveOwnerCount(),
            readerSlotCount: mapped.readerSlotCount,
            maximumFileSize: mapped.mapSize, commitTimeNanoseconds: pin.time,
            isInitialized: pin.flags & FileLayout.commitFlagInitialized != 0)
    }

    /// The options this file was created with, as far as the file records
    /// them (size limit, reader slots, durability, subscription) and its
    /// current permission bits: what a file that replaces it is created with.
    package func creationOptions() throws(StateFileError) -> Options {
        var options = Options()
        options.maximumFileSize = mapped.mapSize
        options.readerSlotCount = mapped.readerSlotCount
        options.durability = mapped.durable ? .systemCrash : .processCrash
        options.subscribedPrefixes = mapped.subscription.prefixes
        options.permissions = try mapped.descriptor.permissions()
        return options
    }

    /// Unmaps this process's resident pages of the file (they stay in the
    /// page cache and are mapped again on the next access), so that a
    /// process that builds or walks a large file it alone uses keeps a
    /// bounded resident set. Costs a page fault per page touched afterwards.
    package func releaseResidentPages() {
        mapped.releaseResidentPages()
    }

    /// Checks the whole current state: every node and leaf inside the heap,
    /// the structural invariants of the tree, keys in strictly ascending
    /// order, and the key count. Returns the number of keys.
    public func verify() throws(StateFileError) -> Int {
        let snapshot = try snapshot()
        defer { snapshot.close() }
        return try snapshot.verify()
    }
}

/// The writer lock of a state file, taken but not yet turned into a
/// transaction (see ``SharedStateFile/waitForWriterLock()``).
package struct WriterLockToken: Sendable {
    /// The descriptor whose `flock` is the lock.
    let descriptor: StateFileDescriptor
}
