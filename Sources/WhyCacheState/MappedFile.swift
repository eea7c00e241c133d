import Atomics
import Glibc
import WhyCacheSupport

/// The state file, open and mapped into this process.
///
/// One `MappedFile` reserves `mapSize` bytes of address space once, at open,
/// over the whole file; the file grows underneath the mapping (`fallocate`)
/// and the new bytes become visible to every process that has it mapped, so
/// readers never remap. This type owns the state layer's open file (its
/// system calls go through ``FileDescriptor``) and the mapping with its raw
/// base pointer; the typed views (`TrieReader`, the allocator, the reader
/// table) go through it.
///
/// Invariant: every offset that a published commit record can reach is below
/// that record's heap end, which is at most the file size, which is at most
/// `mapSize`; so a reader that checks offsets against the heap end never
/// touches a page past the end of the file (which would raise SIGBUS).
final class MappedFile: @unchecked Sendable {
    // @unchecked: all stored properties are immutable after init, except
    // `knownSize`, which is atomic, and `holdsLease` and
    // `spareLockDescriptors`, which are in mutexes.
    // The mapped bytes are shared memory whose concurrency rules are those of
    // docs/FORMAT.md.

    let path: String
    let descriptor: StateFileDescriptor
    let base: UnsafeMutableRawPointer
    let mapSize: Int
    let heapStart: Int
    let readerSlotCount: Int
    let durable: Bool
    /// Whether free-list words carry check tags (creation flag bit 2).
    let taggedFreeLists: Bool
    /// Whether retire lists carry checksums (creation flag bit 3).
    let checksummedRetireLists: Bool
    /// The keys the file keeps, from its header (docs/FORMAT.md section 1.2);
    /// fixed at creation.
    let subscription: KeyPrefixes
    /// A lower bound of the file size, refreshed with `fstat` when a larger
    /// size is needed.
    private let knownSize: ManagedAtomic<Int>
    /// Whether this open file description holds the poller lease; the mutex
    /// also makes taking and releasing it one step with the `fcntl`.
    private let holdsLease = Locked(false)
    /// Descriptors of this file on open file descriptions of their own,
    /// unlocked, that writers of this process used and gave back: the next
    /// writer takes one instead of opening another (an `open` of
    /// `/proc/self/fd/N` and a `close` per transaction, about a tenth of the
    /// client CPU of a single-key set). Each is lent to one writer at a time,
    /// so two writers of this process still lock distinct descriptions and
    /// exclude each other. Closed with the file. They belong to the process
    /// that opened them: a child forked from it shares their open file
    /// descriptions, so it drops them and opens its own (`owner`).
    private let spareLockDescriptors = Locked<(owner: pid_t, descriptors: [StateFileDescriptor])>((getpid(), []))

    /// Opens the state file at `path`, creating it if it does not exist.
    /// Creation is race-free: the file is built under a temporary name and
    /// linked into place only when complete, so every process either creates
    /// it or opens the one another process created.
    static func openOrCreate(path: String, options: SharedStateFile.Options) throws(StateFileError) -> MappedFile {
        for _ in 0..<8 {
            if let file = try openIfExists(path: path) { return file }
            guard options.createIfMissing else { break }
            try create(path: path, options: options)
        }
        throw .systemCallFailed(call: "open", path: path, errno: ENOENT)
    }

    /// Opens and maps the state file at `path`, or returns nil when nothing
    /// is there.
    ///
    /// - Throws: ``StateFileError/needsWriteAccess(path:errno:)`` for a file
    ///   this process may read but not write, or what validating the header
    ///   and mapping the file throw.
    static func openIfExists(path: String) throws(StateFileError) -> MappedFile? {
        switch StateFileDescriptor.opening(path, flags: O_RDWR) {
        case .success(let descriptor):
            return try MappedFile(path: path, descriptor: descriptor)
        case .failure(let error) where error.errno == ENOENT:
            return nil
        case .failure(let error) where (error.errno == EACCES || error.errno == EROFS) && access(path, R_OK) == 0:
            throw .needsWriteAccess(path: path, errno: error.errno)
        case .failure(let error):
            throw StateFileError(systemCall: error)
        }
    }

    /// Builds an empty state file and links it at `path` unless a file is already there.
    ///
    /// - Precondition: `options` were validated (``SharedStateFile/Options/problem``).
    private static func create(path: String, options: SharedStateFile.Options) throws(StateFileError) {
        let heapStart = FileLayout.heapStart(readerSlotCount: options.readerSlotCount)
        // Errors name `path`, the file the caller asked for: the temporary
        // name below is an implementation detail (and shares its directory).
        let temporary = AbandonedFiles.temporaryPath(prefix: "\(path).creating.")
        let file = try StateFileDescriptor.opening(temporary, flags: O_RDWR | O_CREAT | O_EXCL, mode: options.permissions)
            .mapError { StateFileError(systemCall: $0.naming(path)) }.get()
            .naming(path)
        defer {
            file.close()
            FileSystem<SystemCallError>.removeLeftover(temporary)
        }
        let initialSize = heapStart + FileLayout.commitRecordSize
        var header = [UInt8](repeating: 0, count: initialSize)
        header.withUnsafeMutableBytes { raw in
            StateFileHeader.write(for: options, into: raw)
            raw.storeBytes(of: UInt64(heapStart).littleEndian, toByteOffset: FileLayout.currentCommitOffset, as: UInt64.self)
            raw.storeBytes(of: UInt64(initialSize).littleEndian, toByteOffset: FileLayout.bumpOffset, as: UInt64.self)
            // The first commit record: transaction 1, update id 0, empty tree.
            let record = UnsafeMutableRawBufferPointer(rebasing: raw[heapStart..<initialSize])
            CommitRecord(
                transaction: 1, updateID: 0, root: 0, keyCount: 0, heapEnd: UInt64(initialSize),
                bootID: options.durability == .systemCrash ? BootID.zero : BootID.current, time: Clocks.wallClockNanoseconds(),
                flags: 0
            ).write(to: record)
        }
        try file.reserve(initialSize, at: 0)
        try file.write(header, at: 0)
        if options.durability == .systemCrash { try file.synchronize() }
        if link(temporary, path) != 0 && errno != EEXIST {
            throw .systemCallFailed(call: "link", path: path, errno: errno)
        }
    }

    /// Maps an open state file after validating its header; closes
    /// `descriptor` when it throws.
    private init(path: String, descriptor: StateFileDescriptor) throws(StateFileError) {
        let size: Int
        let header: StateFileHeader
        do {
            size = try descriptor.size()
            let bytes = try descriptor.read(count: FileLayout.headerSize, at: 0)
            header = try StateFileHeader(
                validating: bytes + [UInt8](repeating: 0, count: FileLayout.headerSize - bytes.count),
                readCount: bytes.count, fileSize: size, path: path)
        } catch {
            descriptor.close()
            throw error
        }
        let mapped: UnsafeMutableRawPointer
        do {
            mapped = try MemoryMapping.mapShared(descriptor, size: header.mapSize)
        } catch {
            descriptor.close()
            throw error
        }
        self.path = path
        self.descriptor = descriptor
        self.base = mapped
        self.mapSize = header.mapSize
        self.heapStart = header.heapStart
        self.readerSlotCount = header.readerSlotCount
        self.durable = header.durable
        self.taggedFreeLists = header.taggedFreeLists
        self.checksummedRetireLists = header.checksummedRetireLists
        self.subscription = header.subscription
        self.knownSize = ManagedAtomic(size)
    }

    deinit {
        MemoryMapping.unmap(base, size: mapSize)
        descriptor.close()
        for spare in spareLockDescriptors.withLock({ $0.descriptors }) { spare.close() }
    }

    // MARK: Size and growth

    /// Whether `end` lies within the file, refreshing the known size with
    /// `fstat` if needed. Used to validate commit records before trusting them.
    func fileCovers(_ end: Int) -> Bool {
        if end <= knownSize.load(ordering: .relaxed) { return true }
        guard let size = try? currentSize() else { return false }
        return end <= size
    }

    /// The current size of the file.
    func currentSize() throws(StateFileError) -> Int {
        let size = try descriptor.size()
        knownSize.store(size, ordering: .relaxed)
        return size
    }

    /// Grows the file so that it covers at least `end` bytes. Only the writer
    /// calls this. Space is reserved with `posix_fallocate`, so that a full
    /// disk is an error here instead of a SIGBUS on a later store.
    func grow(toCover end: Int) throws(StateFileError) {
        // The file never shrinks, so a size seen once still covers `end`:
        // most allocations need no system call.
        if end <= knownSize.load(ordering: .relaxed) { return }
        let size = try currentSize()
        guard end > size else { return }
        guard end <= mapSize else { throw .fileFull(path: path, limit: mapSize) }
        let step = max(1 << 20, size / 64)  // small steps: the file stays within ~1.5% of its heap
        let target = min(mapSize, FileLayout.roundUp(max(end, size + step), to: 1 << 20))
        // Only the new range: everything below `size` was reserved by the
        // creation or the growth that made the file that large (a killed
        // `fallocate` does not move the size). Reserving from 0 each time
        // made the kernel look up every existing page again, a cost that grew
        // with the file (a tenth of a large load).
        try descriptor.reserve(target - size, at: size)
        knownSize.store(target, ordering: .relaxed)
    }

    /// Flushes written bytes to stable storage (durable mode only).
    func synchronize() throws(StateFileError) {
        try descriptor.synchronizeData()
    }

    // MARK: Typed access to the mapping

    /// Drops this process's page-table entries for the whole mapping: the
    /// pages stay in the page cache and in the file, and the next access
    /// maps them again. Safe at any moment, also while pointers into the
    /// mapping are held, because the mapping is shared and file-backed:
    /// `MADV_DONTNEED` loses nothing (it would zero an anonymous or private
    /// mapping, which this never is). Used so that building or walking a
    /// large private file does not keep all of it resident in this process.
    func releaseResidentPages() {
        MemoryMapping.releaseResidentPages(base, size: mapSize)
    }

    /// An atomic view of the 8-byte word at `offset`.
    /// The caller guarantees `offset` is 8-aligned and within the mapped file.
    @inline(__always)
    func atomicWord(at offset: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (base + offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// The 8-byte word at `offset`, read plainly (writer area and blocks).
    /// The caller guarantees `offset` is 8-aligned and within the file.
    @inline(__always)
    func word(at offset: Int) -> UInt64 {
        UInt64(littleEndian: base.load(fromByteOffset: offset, as: UInt64.self))
    }

    /// Feeds the `count` bytes at `offset` into `checksum`.
    /// The caller guarantees the bytes lie within the file.
    func update(_ checksum: inout CRC32C, withBytesAt offset: Int, count: Int) {
        checksum.update(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// Stores an 8-byte word at `offset` plainly.
    /// The caller guarantees `offset` is 8-aligned, within the file, and that
    /// no reader can observe the word (a block it owns, or the writer area).
    @inline(__always)
    func setWord(_ value: UInt64, at offset: Int) {
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// The 16-byte identity of the file, fixed at creation.
    var fileIdentifier: (UInt64, UInt64) {
        (word(at: FileLayout.fileIdentifierOffset), word(at: FileLayout.fileIdentifierOffset + 8))
    }

    // MARK: Locks

    /// Takes the cross-process writer lock, waiting while another writer
    /// holds it: an `flock` on a descriptor with an open file description of
    /// its own (a spare one, else a new one), so that it also excludes other
    /// threads of this process. The kernel releases it if the process dies.
    /// Returns the descriptor to pass to `unlockWriter`.
    func lockWriter() throws(StateFileError) -> StateFileDescriptor {
        // A waiting `flock` returns only once it holds the lock, or fails.
        guard let lock = try lockDescriptor(wait: true) else {
            throw .systemCallFailed(call: "flock", path: path, errno: EWOULDBLOCK)
        }
        return lock
    }

    /// Takes the writer lock like `lockWriter`, or returns nil at once when
    /// another writer holds it.
    func tryLockWriter() throws(StateFileError) -> StateFileDescriptor? {
        try lockDescriptor(wait: false)
    }

    /// Releases the writer lock taken by `lockWriter`; the descriptor is kept
    /// for the next writer (or closed, which also drops the lock, should
    /// unlocking fail).
    func unlockWriter(_ lock: StateFileDescriptor) {
        guard lock.unlocked() else {
            lock.close()
            return
        }
        spareLockDescriptors.withLock { $0.descriptors.append(lock) }
    }

    /// How many unlocked descriptors wait for the next writer of this process.
    var spareLockDescriptorCount: Int {
        spareLockDescriptors.withLock { $0.descriptors.count }
    }

    /// A spare descriptor, or a new one, holding the writer lock; nil (the
    /// descriptor kept as a spare) when `wait` is false and another writer
    /// holds the lock; on an error, the descriptor is closed.
    private func lockDescriptor(wait: Bool) throws(StateFileError) -> StateFileDescriptor? {
        let candidate: StateFileDescriptor
        let spare = spareLockDescriptors.withLock { spares -> StateFileDescriptor? in
            let process = getpid()
            if spares.owner != process {
                for inherited in spares.descriptors { inherited.close() }
                spares = (process, [])
            }
            return spares.descriptors.popLast()
        }
        if let spare {
            candidate = spare
        } else {
            candidate = try descriptor.reopen(flags: O_RDWR)
        }
        let locked: Bool
        do throws(StateFileError) {
            locked = try candidate.lockExclusively(wait: wait)
        } catch {
            candidate.close()
            throw error
        }
        if locked { return candidate }
        spareLockDescriptors.withLock { $0.descriptors.append(candidate) }
        return nil
    }

    /// Tries to take the open-file-description write lock on reader-slot byte
    /// `slot`. Returns false if another open file description holds it (or
    /// the lock cannot be asked for).
    func tryLockReaderSlot(_ slot: Int) -> Bool {
        (try? descriptor.tryLockByte(at: Int(FileLayout.readerLockBase) + slot)) ?? false
    }

    /// Releases the reader-slot lock of `slot` held through this file's descriptor.
    func unlockReaderSlot(_ slot: Int) {
        descriptor.unlockByte(at: Int(FileLayout.readerLockBase) + slot)
    }

    /// Takes the poller lease (docs/FORMAT.md section 1.10) through this
    /// file's descriptor unless another open file description holds it: an
    /// open-file-description write lock on the byte at
    /// ``FileLayout/pollerLeaseOffset``, which the kernel releases when the
    /// descriptor is closed or the process dies. Returns true when this file
    /// holds the lease, also when it already did.
    ///
    /// - Throws: ``StateFileError/systemCallFailed(call:path:errno:)`` when
    ///   `fcntl` fails for another reason than a lease held elsewhere.
    func tryTakePollerLease() throws(StateFileError) -> Bool {
        try holdsLease.withLock { (held) throws(StateFileError) -> Bool in
            if !held { held = try descriptor.tryLockByte(at: Int(FileLayout.pollerLeaseOffset)) }
            return held
        }
    }

    /// Releases the poller lease if this file holds it, so that another
    /// process (or another open file of this one) can take it at once.
    func releasePollerLease() {
        holdsLease.withLock { held in
            guard held else { return }
            descriptor.unlockByte(at: Int(FileLayout.pollerLeaseOffset))
            held = false
        }
    }

    /// Whether this file holds the poller lease (see ``tryTakePollerLease()``).
    var holdsPollerLease: Bool {
        holdsLease.withLock { $0 }
    }
}

/// The open state file: its system calls fail with
/// ``StateFileError/systemCallFailed(call:path:errno:)``.
typealias StateFileDescriptor = FileDescriptor<StateFileError>

/// The path-level system calls of the state file, failing the same way.
typealias StateFileSystem = FileSystem<StateFileError>
