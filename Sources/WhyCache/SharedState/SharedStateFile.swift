import CWhyCacheSupport
import Glibc

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
public final class SharedStateFile: Sendable {
    /// How to open or create a state file.
    public struct Options: Sendable {
        /// Whether ``SharedStateFile/open(at:options:)`` creates a missing file. Default: true.
        public var createIfMissing = true
        /// The largest size the file may reach, fixed when the file is created;
        /// each process reserves this much address space once, so that growth
        /// never remaps. Default: 64 GiB.
        public var maximumFileSize = 64 << 30
        /// How many threads (across all processes) may read at the same
        /// instant; fixed when the file is created. Default: 1024.
        public var readerSlotCount = FileLayout.defaultReaderSlotCount
        /// What a committed transaction survives; fixed when the file is created.
        public var durability = Durability.processCrash
        /// Permission bits for a new file. Default: 0o644.
        public var permissions: mode_t = 0o644
        /// The key prefixes a new file subscribes to: it keeps only the keys
        /// that start with one of them, and a transaction refuses any other
        /// key (``StateFileError/keyOutsideSubscription(path:)``). Empty (the
        /// default), or containing an empty prefix: every key.
        ///
        /// Fixed when the file is created and stored in its header, so that
        /// every process that opens the file applies the same filter; opening
        /// an existing file ignores this value (``SharedStateFile/subscribedPrefixes``
        /// tells what the file holds, and ``SharedCache`` refuses a file whose
        /// prefixes differ from its configuration). Stored in canonical form:
        /// sorted, without duplicates and without a prefix that another one
        /// starts. At most ``maximumSubscribedPrefixCount`` prefixes of
        /// ``maximumSubscribedPrefixBytes`` bytes together, in that form, each
        /// at most ``WhyCacheLimits/maximumKeyLength`` bytes, else
        /// ``StateFileError/invalidOptions(reason:)``.
        public var subscribedPrefixes: [[UInt8]] = []

        /// The largest allowed ``maximumFileSize``: 64 TiB.
        public static let largestMaximumFileSize = 1 << 46
        /// The most prefixes ``subscribedPrefixes`` may hold (in canonical form): 64.
        public static let maximumSubscribedPrefixCount = FileLayout.maximumSubscribedPrefixCount
        /// The most bytes the prefixes of ``subscribedPrefixes`` may hold
        /// together (in canonical form): 1536.
        public static let maximumSubscribedPrefixBytes = FileLayout.maximumSubscribedPrefixBytes

        /// The guarantee a commit gives.
        public enum Durability: Sendable, Hashable {
            /// Commits survive the crash of any process, not of the machine: no
            /// `fsync`. After a restart of the machine the file refuses to open
            /// (``StateFileError/notDurableAcrossRestart(path:)``) and is rebuilt
            /// from the log. The right choice for a cache in `/dev/shm` or tmpfs.
            case processCrash
            /// Every commit is flushed with `fdatasync` before and after it is
            /// published, so it also survives an operating-system crash.
            case systemCrash
        }

        /// The default options.
        public init() {}

        /// Why these options cannot be used, or nil.
        var problem: String? {
            guard readerSlotCount >= 1, readerSlotCount <= FileLayout.maximumReaderSlotCount,
                maximumFileSize >= 1 << 20, maximumFileSize <= Options.largestMaximumFileSize
            else {
                return "reader slots must be 1...\(FileLayout.maximumReaderSlotCount) and the maximum file size 1 MiB...64 TiB"
            }
            if let problem = subscribedPrefixes.lazy.compactMap({ KeyPrefixes.lengthProblem($0.count) }).first { return problem }
            let canonical = KeyPrefixes.canonical(subscribedPrefixes)
            let bytes = canonical.reduce(0) { $0 + $1.count }
            guard canonical.count <= Options.maximumSubscribedPrefixCount, bytes <= Options.maximumSubscribedPrefixBytes else {
                return "\(canonical.count) subscribed prefixes of \(bytes) bytes exceed the limits of "
                    + "\(Options.maximumSubscribedPrefixCount) prefixes and \(Options.maximumSubscribedPrefixBytes) bytes"
            }
            return nil
        }
    }

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
        let file = SharedStateFile(mapped: try MappedFile.openOrCreate(path: path, options: options))
        // Validate the current commit now, so that a damaged file fails at open.
        let pin = try file.readers.pin()
        file.readers.unpin(pin)
        let commit = try CommitRecord(at: pin.commitOffset, in: file.mapped)
        if commit.bootID != .zero, BootID.current != .zero, commit.bootID != BootID.current {
            throw .notDurableAcrossRestart(path: path)
        }
        return file
    }

    /// Discards the state file at `path`: marks it retired, so that processes
    /// that still have it open can notice (``isRetired``), and unlinks it.
    /// Those processes keep reading the old contents safely until they reopen.
    /// Removing a file that does not exist is not an error.
    ///
    /// Every file this unlinks is marked first, even when other processes
    /// replace the file at `path` at the same moment: the file at the path is
    /// marked, then moved aside by `rename` (which takes whatever file the
    /// path names at that instant), and a file moved aside that was not the
    /// one marked is marked too before it is unlinked. A remover that dies
    /// after marking leaves a retired file at the path; whoever opens it next
    /// finds it retired and finishes the removal.
    public static func remove(at path: String) throws(StateFileError) {
        markRetired(at: path)
        let aside = "\(path).removing.\(getpid()).\(UInt64.random(in: 1...UInt64.max))"
        guard rename(path, aside) == 0 else {
            if errno == ENOENT { return }
            throw .systemCallFailed(call: "rename", path: path, errno: errno)
        }
        markRetired(at: aside)
        if unlink(aside) != 0 && errno != ENOENT {
            throw .systemCallFailed(call: "unlink", path: aside, errno: errno)
        }
    }

    /// Puts the state file at `replacement` in place of the one at `path`,
    /// atomically, and marks the file it displaces retired, so that the
    /// processes that have that one open move to the new file at their next
    /// reopen check (``isRetired``). The displaced file is then unlinked.
    ///
    /// The file at `path` is marked first, then exchanged with `replacement`
    /// in one `renameat2(RENAME_EXCHANGE)`, and the file that the exchange
    /// displaced — the one marked, or one that a concurrent install put there
    /// in between — is marked too before it is unlinked. When nothing is at
    /// `path`, a plain `rename` moves the replacement in. An installer that
    /// dies after marking leaves a retired file at `path`, which the next
    /// opener removes (see ``remove(at:)``).
    ///
    /// - Throws: ``StateFileError/systemCallFailed(call:path:errno:)``.
    public static func install(_ replacement: String, at path: String) throws(StateFileError) {
        markRetired(at: path)
        if whycache_exchange_paths(replacement, path) != 0 {
            guard errno == ENOENT else { throw .systemCallFailed(call: "renameat2", path: path, errno: errno) }
            guard rename(replacement, path) == 0 else { throw .systemCallFailed(call: "rename", path: path, errno: errno) }
            return
        }
        markRetired(at: replacement)
        if unlink(replacement) != 0 && errno != ENOENT {
            throw .systemCallFailed(call: "unlink", path: replacement, errno: errno)
        }
    }

    /// What ``SharedStateFile/install(_:at:unlessNewerThan:requiringPrefixes:)`` did.
    package enum GuardedInstallOutcome: Sendable, Hashable {
        /// The replacement is now the file at the path.
        case installed
        /// The file at the path holds an initialized state at this newer
        /// update id; it was kept and the replacement was left where it is.
        case keptNewer(updateID: UInt64)
        /// The file at the path subscribes to other key prefixes (these); it
        /// was kept and the replacement was left where it is.
        case keptOtherPrefixes([[UInt8]])
    }

    /// Installs the state file at `replacement` at `path` (as
    /// ``install(_:at:)``) unless the state file there is initialized and at
    /// an update id above `updateID` (when given): the readers of `path` then
    /// never move backwards, even when several processes install at once.
    /// With `prefixes`, a usable file at `path` that subscribes to other
    /// prefixes (canonical form) is kept too.
    ///
    /// The check and the exchange happen while this process holds the
    /// writer lock of the file at `path`, so nobody commits to it in
    /// between; and a file found retired once the lock is held (another
    /// process installed over it meanwhile) is let go and the file now at
    /// `path` is checked instead. A missing or unusable file at `path` is
    /// replaced. Blocks while another process holds the writer lock: call it
    /// off the cooperative thread pool.
    ///
    /// - Throws: ``StateFileError`` when the file at `path` is not a state
    ///   file (it is never replaced) or the exchange fails.
    package static func install(
        _ replacement: String, at path: String, unlessNewerThan updateID: UInt64?, requiringPrefixes prefixes: [[UInt8]]? = nil
    ) throws(StateFileError) -> GuardedInstallOutcome {
        while true {
            var options = Options()
            options.createIfMissing = false
            let current: SharedStateFile
            do {
                current = try open(at: path, options: options)
            } catch {
                if case .systemCallFailed("open", _, ENOENT) = error {
                    try install(replacement, at: path)
                    return .installed
                }
                guard error.marksUnusableStateFile else { throw error }
                try install(replacement, at: path)
                return .installed
            }
            let lock: WriteTransaction
            do {
                lock = try current.beginWrite()
            } catch {
                // Damaged beyond what opening checks: replaced like any unusable file.
                guard error.marksUnusableStateFile else { throw error }
                try install(replacement, at: path)
                return .installed
            }
            defer { lock.abandon() }
            if current.isRetired { continue }
            if let prefixes, current.subscribedPrefixes != prefixes {
                return .keptOtherPrefixes(current.subscribedPrefixes)
            }
            if let updateID, lock.isInitialized && lock.baseUpdateID > updateID {
                return .keptNewer(updateID: lock.baseUpdateID)
            }
            try install(replacement, at: path)
            return .installed
        }
    }

    /// Sets the retired mark of the state file at `path`, if it is one.
    private static func markRetired(at path: String) {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        var magic: UInt64 = 0
        guard pread(fd, &magic, 8, 0) == 8, UInt64(littleEndian: magic) == FileLayout.magic else { return }
        var one = UInt64(1).littleEndian
        _ = pwrite(fd, &one, 8, off_t(FileLayout.retiredOffset))
    }

    /// Whether this file was discarded or replaced by ``remove(at:)``; a
    /// process that sees this should reopen the path.
    public var isRetired: Bool {
        mapped.atomicWord(at: FileLayout.retiredOffset).load(ordering: .relaxed) != 0
    }

    /// Marks this file as retired without unlinking it (used when another file
    /// replaces it by rename).
    public func markRetired() {
        mapped.atomicWord(at: FileLayout.retiredOffset).store(1, ordering: .sequentiallyConsistent)
    }

    /// The key prefixes the file subscribes to, in canonical form (sorted,
    /// none starting another), read from its header: the file holds only
    /// keys that start with one of them. Empty: every key. Fixed at creation
    /// (``Options/subscribedPrefixes``).
    public var subscribedPrefixes: [[UInt8]] { mapped.subscription.prefixes }

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

    /// The value stored under `key` in the current state, or nil.
    @inlinable
    public func value(forKey key: some Sequence<UInt8>) throws(StateFileError) -> [UInt8]? {
        try withBorrowedBytes(key) { bytes in
            Result { () throws(StateFileError) in
                try self.withValue(forKeyBytes: bytes) { (value) throws(StateFileError) in value.map { Array($0) } }
            }
        }.get()
    }

    /// Whether `key` is present in the current state.
    @inlinable
    public func contains(_ key: some Sequence<UInt8>) throws(StateFileError) -> Bool {
        try withBorrowedBytes(key) { bytes in
            Result { () throws(StateFileError) in try self.withValue(forKeyBytes: bytes) { $0 != nil } }
        }.get()
    }

    /// Calls `body` with the value under `key` as a buffer in shared memory
    /// (no copy) or nil; the buffer is valid only during the call.
    ///
    /// - Throws: a ``StateFileError`` for an invalid key or a damaged file.
    @inlinable
    public func withValue<Result>(
        forKey key: some Sequence<UInt8>, _ body: (UnsafeRawBufferPointer?) -> Result
    ) throws(StateFileError) -> Result {
        try withBorrowedBytes(key) { bytes in
            Swift.Result { () throws(StateFileError) in try self.withValue(forKeyBytes: bytes, body) }
        }.get()
    }

    /// Calls a throwing `body` with the value under `key` as a buffer in
    /// shared memory (no copy) or nil; the buffer is valid only during the
    /// call. Swift infers a throwing closure's error as `any Error`, so this
    /// form throws `any Error`; a `body` that does not throw selects the
    /// form that throws ``StateFileError`` only.
    ///
    /// - Throws: a ``StateFileError``, or what `body` throws.
    @inlinable
    public func withValue<Result, Failure: Error>(
        forKey key: some Sequence<UInt8>, _ body: (UnsafeRawBufferPointer?) throws(Failure) -> Result
    ) throws -> Result {
        try withValue(forKey: key) { value in Swift.Result { () throws(Failure) in try body(value) } }.get()
    }

    /// Calls `body` with the value under the borrowed `key` as a buffer in
    /// shared memory (no copy) or nil. The fastest read: no allocation.
    /// `body` may throw a ``StateFileError`` of its own.
    ///
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

    /// Waits for the writer lock and returns it as a token for
    /// ``beginWrite(holding:)``, so that the wait can happen on a thread that
    /// may block while the transaction is used from a Swift task.
    func waitForWriterLock() throws(StateFileError) -> WriterLockToken {
        WriterLockToken(descriptor: try mapped.lockWriter())
    }

    /// Starts a write transaction under a lock taken by ``waitForWriterLock()``
    /// on this file. The lock is released when the transaction finishes, or
    /// at once when starting fails.
    func beginWrite(holding token: WriterLockToken) throws(StateFileError) -> WriteTransaction {
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
    private func makeTransaction(lock: Int32) throws(StateFileError) -> WriteTransaction {
        do {
            let offset = Int(mapped.atomicWord(at: FileLayout.currentCommitOffset).load(ordering: .sequentiallyConsistent))
            let commit = try CommitRecord(at: offset, in: mapped)
            let boot = BootID.current
            let writerBoot = BootID(
                high: mapped.word(at: FileLayout.writerBootIDOffset), low: mapped.word(at: FileLayout.writerBootIDOffset + 8))
            if mapped.word(at: FileLayout.writerDirtyOffset) != 0 || writerBoot != boot {
                // The previous writer died mid-transaction (or could not clean
                // up), or the machine restarted since the allocator state was
                // last trusted (see `FileLayout.writerBootIDOffset`).
                try SpaceAllocator.recover(file: mapped, commit: commit, commitOffset: offset)
                mapped.setWord(boot.high, at: FileLayout.writerBootIDOffset)
                mapped.setWord(boot.low, at: FileLayout.writerBootIDOffset + 8)
            }
            try SpaceAllocator.checkWriterArea(file: mapped, commit: commit)
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
    func tryTakePollerLease() throws(StateFileError) -> Bool {
        try mapped.tryTakePollerLease()
    }

    /// Gives the poller lease up if this object holds it, so that another
    /// process can take it at its next try.
    func releasePollerLease() {
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

    /// Unmaps this process's resident pages of the file (they stay in the
    /// page cache and are mapped again on the next access), so that a
    /// process that builds or walks a large file it alone uses keeps a
    /// bounded resident set. Costs a page fault per page touched afterwards.
    func releaseResidentPages() {
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
struct WriterLockToken: Sendable {
    /// The descriptor whose `flock` is the lock.
    let descriptor: Int32
}

/// Counters describing a state file at one moment.
public struct StateFileStatistics: Sendable, Hashable, Codable {
    /// The update id of the current state.
    public var updateID: UInt64
    /// The number of keys in the current state.
    public var keyCount: Int
    /// The number of the last committed transaction.
    public var transaction: UInt64
    /// The size of the file in bytes.
    public var fileSize: Int
    /// The bytes of the heap carved into blocks so far.
    public var heapBytes: Int
    /// Bytes on the free lists, ready for reuse.
    public var freeBytes: Int
    /// Bytes replaced by committed transactions that wait until no reader can see them.
    public var retiredBytes: Int
    /// Reader slots held by processes (live, or dead and not yet reclaimed).
    public var readerSlotsInUse: Int
    /// The number of live processes that hold reader slots: the processes
    /// reading this file now, or that read it and still have it open.
    public var liveReaderProcesses: Int
    /// The number of reader slots in the file.
    public var readerSlotCount: Int
    /// The largest size the file may reach.
    public var maximumFileSize: Int
    /// When the current state was committed (nanoseconds since 1970).
    public var commitTimeNanoseconds: UInt64
    /// Whether the current state was built from a change log (see
    /// `WriteTransaction/markInitialized()`).
    public var isInitialized: Bool
}
