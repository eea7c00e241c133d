import Glibc
import Atomics

/// The state file, open and mapped into this process.
///
/// One `MappedFile` reserves `mapSize` bytes of address space once, at open,
/// over the whole file; the file grows underneath the mapping (`fallocate`)
/// and the new bytes become visible to every process that has it mapped, so
/// readers never remap. This type owns every system call of the state layer
/// and the raw base pointer; the typed views (`TrieReader`, the allocator, the
/// reader table) go through it.
///
/// Invariant: every offset that a published commit record can reach is below
/// that record's heap end, which is at most the file size, which is at most
/// `mapSize`; so a reader that checks offsets against the heap end never
/// touches a page past the end of the file (which would raise SIGBUS).
final class MappedFile: @unchecked Sendable {
    // @unchecked: all stored properties are immutable after init, except
    // `knownSize`, which is atomic, and `holdsLease`, which is in a mutex.
    // The mapped bytes are shared memory whose concurrency rules are those of
    // docs/FORMAT.md.

    let path: String
    let descriptor: Int32
    let base: UnsafeMutableRawPointer
    let mapSize: Int
    let heapStart: Int
    let readerSlotCount: Int
    let durable: Bool
    /// Whether free-list words carry check tags (creation flag bit 2).
    let taggedFreeLists: Bool
    /// The keys the file keeps, from its header (docs/FORMAT.md section 1.2);
    /// fixed at creation.
    let subscription: KeyPrefixes
    /// A lower bound of the file size, refreshed with `fstat` when a larger
    /// size is needed.
    private let knownSize: ManagedAtomic<Int>
    /// Whether this open file description holds the poller lease; the mutex
    /// also makes taking and releasing it one step with the `fcntl`.
    private let holdsLease = Locked(false)

    /// Opens the state file at `path`, creating it if it does not exist.
    /// Creation is race-free: the file is built under a temporary name and
    /// linked into place only when complete, so every process either creates
    /// it or opens the one another process created.
    static func openOrCreate(path: String, options: SharedStateFile.Options) throws(StateFileError) -> MappedFile {
        for _ in 0..<8 {
            let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
            if fd >= 0 { return try MappedFile(path: path, descriptor: fd) }
            if errno == EACCES || errno == EROFS, access(path, R_OK) == 0 {
                throw .needsWriteAccess(path: path, errno: errno)
            }
            guard errno == ENOENT else { throw .systemCallFailed(call: "open", path: path, errno: errno) }
            if !options.createIfMissing { throw .systemCallFailed(call: "open", path: path, errno: ENOENT) }
            try create(path: path, options: options)
        }
        throw .systemCallFailed(call: "open", path: path, errno: ENOENT)
    }

    /// Builds an empty state file and links it at `path` unless a file is already there.
    ///
    /// - Precondition: `options` were validated (``SharedStateFile/Options/problem``).
    private static func create(path: String, options: SharedStateFile.Options) throws(StateFileError) {
        let subscription = KeyPrefixes(canonicalizing: options.subscribedPrefixes)
        let slots = options.readerSlotCount
        let heapStart = FileLayout.heapStart(readerSlotCount: slots)
        // Errors name `path`, the file the caller asked for: the temporary
        // name below is an implementation detail (and shares its directory).
        let temporary = "\(path).creating.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, options.permissions)
        guard fd >= 0 else { throw .systemCallFailed(call: "open", path: path, errno: errno) }
        defer {
            Glibc.close(fd)
            unlink(temporary)
        }
        let initialSize = heapStart + FileLayout.commitRecordSize
        let rc = posix_fallocate(fd, 0, off_t(initialSize))
        guard rc == 0 else { throw .systemCallFailed(call: "posix_fallocate", path: path, errno: rc) }

        var header = [UInt8](repeating: 0, count: initialSize)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: FileLayout.magic.littleEndian, toByteOffset: FileLayout.magicOffset, as: UInt64.self)
            let version = subscription.isEverything ? FileLayout.plainFormatVersion : FileLayout.subscribedFormatVersion
            raw.storeBytes(of: version.littleEndian, toByteOffset: FileLayout.formatVersionOffset, as: UInt32.self)
            raw.storeBytes(of: UInt32(slots).littleEndian, toByteOffset: FileLayout.readerSlotCountOffset, as: UInt32.self)
            raw.storeBytes(of: UInt64(options.maximumFileSize).littleEndian, toByteOffset: FileLayout.mapSizeOffset, as: UInt64.self)
            raw.storeBytes(of: UInt64(heapStart).littleEndian, toByteOffset: FileLayout.heapStartOffset, as: UInt64.self)
            var generator = SystemRandomNumberGenerator()
            raw.storeBytes(of: generator.next(), toByteOffset: FileLayout.fileIdentifierOffset, as: UInt64.self)
            raw.storeBytes(of: generator.next(), toByteOffset: FileLayout.fileIdentifierOffset + 8, as: UInt64.self)
            var flags: UInt32 = (options.durability == .systemCrash ? FileLayout.creationFlagDurable : 0) | FileLayout.creationFlagTaggedFreeLists
            if !subscription.isEverything {
                flags |= FileLayout.creationFlagSubscribed
                writePrefixBlock(subscription.prefixes, into: raw)
            }
            raw.storeBytes(of: flags.littleEndian, toByteOffset: FileLayout.creationFlagsOffset, as: UInt32.self)
            let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<FileLayout.checksummedHeaderLength]))
            raw.storeBytes(of: checksum.littleEndian, toByteOffset: FileLayout.headerChecksumOffset, as: UInt32.self)
            raw.storeBytes(of: UInt64(heapStart).littleEndian, toByteOffset: FileLayout.currentCommitOffset, as: UInt64.self)
            raw.storeBytes(of: UInt64(initialSize).littleEndian, toByteOffset: FileLayout.bumpOffset, as: UInt64.self)
            // The first commit record: transaction 1, update id 0, empty tree.
            let record = UnsafeMutableRawBufferPointer(rebasing: raw[heapStart..<initialSize])
            CommitRecord(
                transaction: 1, updateID: 0, root: 0, keyCount: 0, heapEnd: UInt64(initialSize),
                bootID: options.durability == .systemCrash ? BootID.zero : BootID.current, time: wallClockNanoseconds(),
                flags: 0
            ).write(to: record)
        }
        let written = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == initialSize else { throw .systemCallFailed(call: "pwrite", path: path, errno: errno) }
        if options.durability == .systemCrash { fsync(fd) }
        if link(temporary, path) != 0 && errno != EEXIST {
            throw .systemCallFailed(call: "link", path: path, errno: errno)
        }
    }

    /// Writes the subscribed-prefix block (docs/FORMAT.md section 1.2) into
    /// the header page of a file being created.
    ///
    /// - Precondition: `prefixes` is canonical, non-empty and within the
    ///   limits of ``FileLayout/maximumSubscribedPrefixCount`` and
    ///   ``FileLayout/maximumSubscribedPrefixBytes``.
    private static func writePrefixBlock(_ prefixes: [[UInt8]], into raw: UnsafeMutableRawBufferPointer) {
        var offset = FileLayout.prefixEntriesOffset
        for prefix in prefixes {
            raw.storeBytes(of: UInt16(prefix.count).littleEndian, toByteOffset: offset, as: UInt16.self)
            offset += FileLayout.prefixLengthSize
            UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + prefix.count]).copyBytes(from: prefix)
            offset += prefix.count
        }
        raw.storeBytes(of: UInt32(prefixes.count).littleEndian, toByteOffset: FileLayout.prefixCountOffset, as: UInt32.self)
        raw.storeBytes(
            of: UInt32(offset - FileLayout.prefixEntriesOffset).littleEndian, toByteOffset: FileLayout.prefixEntriesLengthOffset,
            as: UInt32.self)
        let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[FileLayout.prefixBlockOffset..<offset]))
        raw.storeBytes(of: checksum.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Maps an open state file after validating its header.
    private init(path: String, descriptor fd: Int32) throws(StateFileError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .systemCallFailed(call: "fstat", path: path, errno: code)
        }
        let size = Int(info.st_size)
        var header = [UInt8](repeating: 0, count: FileLayout.headerSize)
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        let subscription: KeyPrefixes
        do {
            subscription = try MappedFile.validateHeader(header, readCount: got, fileSize: size, path: path)
        } catch {
            Glibc.close(fd)
            throw error
        }
        let fields = header.withUnsafeBytes { raw in
            (
                slots: Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.readerSlotCountOffset, as: UInt32.self))),
                mapSize: Int(UInt64(littleEndian: raw.load(fromByteOffset: FileLayout.mapSizeOffset, as: UInt64.self))),
                heapStart: Int(UInt64(littleEndian: raw.load(fromByteOffset: FileLayout.heapStartOffset, as: UInt64.self))),
                flags: UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.creationFlagsOffset, as: UInt32.self))
            )
        }
        let mapped = mmap(nil, fields.mapSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0)
        guard let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            let code = errno
            Glibc.close(fd)
            throw .systemCallFailed(call: "mmap", path: path, errno: code)
        }
        self.path = path
        self.descriptor = fd
        self.base = mapped
        self.mapSize = fields.mapSize
        self.heapStart = fields.heapStart
        self.readerSlotCount = fields.slots
        self.durable = fields.flags & FileLayout.creationFlagDurable != 0
        self.taggedFreeLists = fields.flags & FileLayout.creationFlagTaggedFreeLists != 0
        self.subscription = subscription
        self.knownSize = ManagedAtomic(size)
    }

    /// Checks the immutable header — magic, version, checksum, creation
    /// flags and geometry — and the subscribed-prefix block; returns the
    /// keys the file keeps.
    static func validateHeader(_ header: [UInt8], readCount: Int, fileSize: Int, path: String) throws(StateFileError) -> KeyPrefixes {
        guard readCount >= 8, fileSize >= 8 else { throw .notAStateFile(path: path) }
        return try header.withUnsafeBytes { raw in
            Result { () throws(StateFileError) in try validateHeader(raw, readCount: readCount, fileSize: fileSize, path: path) }
        }.get()
    }

    private static func validateHeader(
        _ raw: UnsafeRawBufferPointer, readCount: Int, fileSize: Int, path: String
    ) throws(StateFileError) -> KeyPrefixes {
            guard UInt64(littleEndian: raw.load(fromByteOffset: FileLayout.magicOffset, as: UInt64.self)) == FileLayout.magic else {
                throw .notAStateFile(path: path)
            }
            guard readCount >= FileLayout.headerSize, fileSize >= FileLayout.headerSize else {
                throw .truncated(path: path, size: fileSize, required: FileLayout.headerSize)
            }
            let version = UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.formatVersionOffset, as: UInt32.self))
            let stored = UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.headerChecksumOffset, as: UInt32.self))
            let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<FileLayout.checksummedHeaderLength]))
            let known = FileLayout.oldestFormatVersion...FileLayout.newestFormatVersion
            guard stored == actual else {
                // A different version may lay the header out differently; say so first.
                if !known.contains(version) {
                    throw .unsupportedFormatVersion(path: path, found: version, supported: FileLayout.newestFormatVersion)
                }
                throw .corrupted(path: path, reason: "header checksum mismatch")
            }
            guard known.contains(version) else {
                throw .unsupportedFormatVersion(path: path, found: version, supported: FileLayout.newestFormatVersion)
            }
            let flags = UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.creationFlagsOffset, as: UInt32.self))
            guard flags & ~FileLayout.knownCreationFlags == 0 else {
                throw .unsupportedCreationFlags(path: path, flags: flags)
            }
            let subscribed = flags & FileLayout.creationFlagSubscribed != 0
            guard subscribed == (version == FileLayout.subscribedFormatVersion) else {
                throw .corrupted(path: path, reason: "creation flags 0x\(String(flags, radix: 16)) do not match format version \(version)")
            }
            let slots = Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.readerSlotCountOffset, as: UInt32.self)))
            let mapSize = UInt64(littleEndian: raw.load(fromByteOffset: FileLayout.mapSizeOffset, as: UInt64.self))
            let heapStart = UInt64(littleEndian: raw.load(fromByteOffset: FileLayout.heapStartOffset, as: UInt64.self))
            guard slots >= 1, slots <= FileLayout.maximumReaderSlotCount,
                heapStart == UInt64(FileLayout.heapStart(readerSlotCount: slots)),
                mapSize >= heapStart, mapSize <= UInt64(SharedStateFile.Options.largestMaximumFileSize)
            else {
                throw .corrupted(path: path, reason: "impossible header geometry")
            }
            guard fileSize >= Int(heapStart) + FileLayout.commitRecordSize else {
                throw .truncated(path: path, size: fileSize, required: Int(heapStart) + FileLayout.commitRecordSize)
            }
            guard fileSize <= Int(mapSize) else {
                throw .corrupted(path: path, reason: "file is larger than its maximum size")
            }
            return subscribed ? try readPrefixBlock(raw, path: path) : .everything
    }

    /// Reads and checks the subscribed-prefix block of a header page: its
    /// bounds before its checksum, its checksum before its entries, and then
    /// that the entries fill it exactly and are canonical and within the limits.
    private static func readPrefixBlock(_ raw: UnsafeRawBufferPointer, path: String) throws(StateFileError) -> KeyPrefixes {
        func damaged(_ reason: String) -> StateFileError { .corrupted(path: path, reason: "subscribed prefixes: \(reason)") }
        let count = Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.prefixCountOffset, as: UInt32.self)))
        let entriesLength = Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.prefixEntriesLengthOffset, as: UInt32.self)))
        let maximumEntriesLength = FileLayout.maximumSubscribedPrefixCount * FileLayout.prefixLengthSize
            + FileLayout.maximumSubscribedPrefixBytes
        guard (1...FileLayout.maximumSubscribedPrefixCount).contains(count), entriesLength <= maximumEntriesLength else {
            throw damaged("impossible count \(count) or length \(entriesLength)")
        }
        let end = FileLayout.prefixEntriesOffset + entriesLength
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: end, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[FileLayout.prefixBlockOffset..<end])) else {
            throw damaged("checksum mismatch")
        }
        var prefixes: [[UInt8]] = []
        var offset = FileLayout.prefixEntriesOffset
        for _ in 0..<count {
            guard offset + FileLayout.prefixLengthSize <= end else { throw damaged("the entries overrun the block") }
            let length = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            offset += FileLayout.prefixLengthSize
            guard length >= 1, KeyPrefixes.lengthProblem(length) == nil, offset + length <= end else {
                throw damaged("impossible prefix length \(length)")
            }
            prefixes.append(Array(raw[offset..<offset + length]))
            offset += length
        }
        guard offset == end, offset - FileLayout.prefixEntriesOffset - count * FileLayout.prefixLengthSize
            <= FileLayout.maximumSubscribedPrefixBytes
        else {
            throw damaged("the entries do not fill the block")
        }
        let subscription = KeyPrefixes(canonicalizing: prefixes)
        guard subscription.prefixes == prefixes else { throw damaged("not sorted, or one starts another") }
        return subscription
    }

    deinit {
        munmap(base, mapSize)
        Glibc.close(descriptor)
    }

    // MARK: Size and growth

    /// Whether `end` lies within the file, refreshing the known size with
    /// `fstat` if needed. Used to validate commit records before trusting them.
    func fileCovers(_ end: Int) -> Bool {
        if end <= knownSize.load(ordering: .relaxed) { return true }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        let size = Int(info.st_size)
        knownSize.store(size, ordering: .relaxed)
        return end <= size
    }

    /// The current size of the file.
    func currentSize() throws(StateFileError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .systemCallFailed(call: "fstat", path: path, errno: errno) }
        knownSize.store(Int(info.st_size), ordering: .relaxed)
        return Int(info.st_size)
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
        let rc = posix_fallocate(descriptor, off_t(size), off_t(target - size))
        guard rc == 0 else { throw .systemCallFailed(call: "posix_fallocate", path: path, errno: rc) }
        knownSize.store(target, ordering: .relaxed)
    }

    /// Flushes written bytes to stable storage (durable mode only).
    func synchronize() throws(StateFileError) {
        guard fdatasync(descriptor) == 0 else { throw .systemCallFailed(call: "fdatasync", path: path, errno: errno) }
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
        _ = madvise(base, mapSize, MADV_DONTNEED)
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
    /// holds it: an `flock` on a descriptor opened for this purpose (a new
    /// open file description, so that it also excludes other threads of this
    /// process). The kernel releases it if the process dies. Returns the
    /// descriptor to pass to `unlockWriter`.
    func lockWriter() throws(StateFileError) -> Int32 {
        let fd = try openLockDescriptor()
        while flock(fd, LOCK_EX) != 0 {
            let code = errno
            if code == EINTR { continue }
            Glibc.close(fd)
            throw .systemCallFailed(call: "flock", path: path, errno: code)
        }
        return fd
    }

    /// Takes the writer lock like `lockWriter`, or returns nil at once when
    /// another writer holds it.
    func tryLockWriter() throws(StateFileError) -> Int32? {
        let fd = try openLockDescriptor()
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            Glibc.close(fd)
            if code == EWOULDBLOCK { return nil }
            throw .systemCallFailed(call: "flock", path: path, errno: code)
        }
        return fd
    }

    /// A new descriptor of the inode we have mapped (not whatever the path names now).
    private func openLockDescriptor() throws(StateFileError) -> Int32 {
        let fd = Glibc.open("/proc/self/fd/\(descriptor)", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCallFailed(call: "open", path: path, errno: errno) }
        return fd
    }

    /// Releases the writer lock taken by `lockWriter`.
    func unlockWriter(_ fd: Int32) {
        Glibc.close(fd)  // closing the last descriptor of the description drops the flock
    }

    /// Tries to take the open-file-description write lock on reader-slot byte
    /// `slot`. Returns false if another open file description holds it.
    func tryLockReaderSlot(_ slot: Int) -> Bool {
        var lock = byteLock(at: FileLayout.readerLockBase + Int64(slot), type: Int16(F_WRLCK))
        return fcntl(descriptor, MappedFile.ofdSetLock, &lock) == 0
    }

    /// Releases the reader-slot lock of `slot` held through this file's descriptor.
    func unlockReaderSlot(_ slot: Int) {
        var lock = byteLock(at: FileLayout.readerLockBase + Int64(slot), type: Int16(F_UNLCK))
        _ = fcntl(descriptor, MappedFile.ofdSetLock, &lock)
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
        let outcome = holdsLease.withLock { held -> Int32 in
            if held { return 0 }
            var lock = byteLock(at: FileLayout.pollerLeaseOffset, type: Int16(F_WRLCK))
            guard fcntl(descriptor, MappedFile.ofdSetLock, &lock) == 0 else { return errno }
            held = true
            return 0
        }
        switch outcome {
        case 0: return true
        case EAGAIN, EACCES: return false  // another open file description holds it
        default: throw .systemCallFailed(call: "fcntl", path: path, errno: outcome)
        }
    }

    /// Releases the poller lease if this file holds it, so that another
    /// process (or another open file of this one) can take it at once.
    func releasePollerLease() {
        holdsLease.withLock { held in
            guard held else { return }
            var lock = byteLock(at: FileLayout.pollerLeaseOffset, type: Int16(F_UNLCK))
            _ = fcntl(descriptor, MappedFile.ofdSetLock, &lock)
            held = false
        }
    }

    /// Whether this file holds the poller lease (see ``tryTakePollerLease()``).
    var holdsPollerLease: Bool {
        holdsLease.withLock { $0 }
    }

    /// An open-file-description lock request of `type` on the one byte at `offset`.
    private func byteLock(at offset: Int64, type: Int16) -> flock {
        var lock = flock()
        lock.l_type = type
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(offset)
        lock.l_len = 1
        lock.l_pid = 0  // required to be 0 for open-file-description locks
        return lock
    }

    /// `F_OFD_SETLK` (Linux): a byte-range lock owned by the open file
    /// description, released when the process that holds it dies.
    private static let ofdSetLock: Int32 = 37
}

/// Wall-clock time in nanoseconds since 1970 (for commit timestamps and lag).
func wallClockNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The identity of the current boot of this machine, used to notice that a
/// commit made without `fsync` may not have survived a restart.
struct BootID: Hashable {
    var high: UInt64
    var low: UInt64

    static let zero = BootID(high: 0, low: 0)

    /// Read once from `/proc/sys/kernel/random/boot_id` (a UUID); zero when
    /// unavailable, which disables the check.
    static let current: BootID = {
        let fd = Glibc.open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .zero }
        defer { Glibc.close(fd) }
        var text = [UInt8](repeating: 0, count: 64)
        let count = text.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return .zero }
        var digits: [UInt8] = []
        for byte in text[0..<count] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digits.append(byte - UInt8(ascii: "a") + 10)
            default: continue
            }
        }
        guard digits.count == 32 else { return .zero }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for digit in digits[0..<16] { high = high << 4 | UInt64(digit) }
        for digit in digits[16..<32] { low = low << 4 | UInt64(digit) }
        return BootID(high: high, low: low)
    }()
}
