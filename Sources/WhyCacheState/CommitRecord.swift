import WhyCacheSupport

/// One published state of the file: the root of its tree and the log position
/// it corresponds to.
///
/// A commit record is a 128-byte heap block, written in full (with its
/// checksum) before the writer publishes its offset in the header's commit
/// pointer, and never changed afterwards. A reader that loaded the pointer
/// therefore sees a complete record; it is retired like any other block when
/// a later commit replaces it. Layout: `FileLayout.commit*`.
struct CommitRecord: Equatable {
    var transaction: UInt64
    var updateID: UInt64
    var root: UInt64
    var keyCount: UInt64
    var heapEnd: UInt64
    var bootID: BootID
    var time: UInt64
    /// Bits defined by `FileLayout.commitFlagInitialized`; others are zero.
    var flags: UInt64
    /// The payload checksum (CRC-32C) of the log record `updateID`, the one
    /// this state applied last, when the writer knew it; nil otherwise.
    /// Stored with the record's id, so that a writer that does not know the
    /// field (and leaves it zero) never leaves a checksum of another record.
    var appliedRecordChecksum: UInt32?

    /// Writes the record, checksum last, into `block` (at least 128 bytes).
    func write(to block: UnsafeMutableRawBufferPointer) {
        for index in 0..<FileLayout.commitRecordSize { block[index] = 0 }
        func put(_ value: UInt64, _ offset: Int) {
            block.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
        }
        block.storeBytes(of: FileLayout.commitMagic.littleEndian, toByteOffset: FileLayout.commitMagicOffset, as: UInt32.self)
        put(transaction, FileLayout.commitTransactionOffset)
        put(updateID, FileLayout.commitUpdateIDOffset)
        put(root, FileLayout.commitRootOffset)
        put(keyCount, FileLayout.commitKeyCountOffset)
        put(heapEnd, FileLayout.commitHeapEndOffset)
        put(bootID.high, FileLayout.commitBootIDOffset)
        put(bootID.low, FileLayout.commitBootIDOffset + 8)
        put(time, FileLayout.commitTimeOffset)
        put(flags, FileLayout.commitFlagsOffset)
        if let appliedRecordChecksum, updateID != 0 {
            put(updateID, FileLayout.commitAppliedRecordIDOffset)
            block.storeBytes(
                of: appliedRecordChecksum.littleEndian, toByteOffset: FileLayout.commitAppliedRecordChecksumOffset, as: UInt32.self)
        }
        let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[8..<FileLayout.commitRecordSize]))
        block.storeBytes(of: checksum.littleEndian, toByteOffset: FileLayout.commitChecksumOffset, as: UInt32.self)
    }

    /// Reads and validates the record at `offset` of `file`: it must lie in
    /// the heap, within the file, carry its magic and checksum, and describe a
    /// heap that the file covers.
    init(at offset: Int, in file: MappedFile) throws(StateFileError) {
        guard offset & 7 == 0, offset >= file.heapStart, offset <= file.mapSize - FileLayout.commitRecordSize,
            file.fileCovers(offset + FileLayout.commitRecordSize)
        else {
            throw .corrupted(path: file.path, reason: "commit pointer \(offset) is outside the file")
        }
        let block = UnsafeRawBufferPointer(start: file.base + offset, count: FileLayout.commitRecordSize)
        func get(_ at: Int) -> UInt64 { Self.field(at, of: UnsafeRawPointer(file.base + offset)) }
        let magic = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: FileLayout.commitMagicOffset, as: UInt32.self))
        let stored = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: FileLayout.commitChecksumOffset, as: UInt32.self))
        guard magic == FileLayout.commitMagic,
            stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[8..<FileLayout.commitRecordSize]))
        else {
            throw .corrupted(path: file.path, reason: "commit record at \(offset) fails its checksum")
        }
        transaction = get(FileLayout.commitTransactionOffset)
        updateID = get(FileLayout.commitUpdateIDOffset)
        root = get(FileLayout.commitRootOffset)
        keyCount = get(FileLayout.commitKeyCountOffset)
        heapEnd = get(FileLayout.commitHeapEndOffset)
        bootID = BootID(high: get(FileLayout.commitBootIDOffset), low: get(FileLayout.commitBootIDOffset + 8))
        time = get(FileLayout.commitTimeOffset)
        flags = get(FileLayout.commitFlagsOffset)
        appliedRecordChecksum = Self.appliedRecordChecksum(in: block)
        guard heapEnd >= UInt64(offset + FileLayout.commitRecordSize), heapEnd <= UInt64(file.mapSize),
            file.fileCovers(Int(heapEnd)), transaction >= 1
        else {
            throw .corrupted(path: file.path, reason: "commit record at \(offset) describes a heap the file does not hold")
        }
        // Every key has a leaf of its own, and the smallest block is 8 bytes:
        // a larger count is damage (and would not fit in an `Int`).
        guard keyCount <= (heapEnd - UInt64(file.heapStart)) / 8 else {
            throw .corrupted(path: file.path, reason: "commit record at \(offset) counts \(keyCount) keys, more than its heap can hold")
        }
    }

    /// The 64-bit field at byte `offset` of the commit record that starts at
    /// `record` (`FileLayout.commit*Offset`): the one decoder of the record's
    /// fields, used by ``init(at:in:)`` and by the read path
    /// (`ReaderTable.pin()`), which takes the fields of a record validated
    /// once without building a `CommitRecord`.
    ///
    /// - Precondition: `record` points at a whole commit record in mapped
    ///   memory, 8-byte aligned, and `offset` is one of its 8-byte fields.
    @inline(__always)
    static func field(_ offset: Int, of record: UnsafeRawPointer) -> UInt64 {
        UInt64(littleEndian: record.load(fromByteOffset: offset, as: UInt64.self))
    }

    /// The applied-record checksum of the commit record in `block` (see
    /// ``appliedRecordChecksum``): present only when the id stored with it
    /// is the record's non-zero update id.
    ///
    /// - Precondition: `block` holds a whole commit record.
    static func appliedRecordChecksum(in block: UnsafeRawBufferPointer) -> UInt32? {
        let updateID = UInt64(littleEndian: block.loadUnaligned(fromByteOffset: FileLayout.commitUpdateIDOffset, as: UInt64.self))
        let recordID = UInt64(littleEndian: block.loadUnaligned(fromByteOffset: FileLayout.commitAppliedRecordIDOffset, as: UInt64.self))
        guard updateID != 0, recordID == updateID else { return nil }
        return UInt32(littleEndian: block.loadUnaligned(fromByteOffset: FileLayout.commitAppliedRecordChecksumOffset, as: UInt32.self))
    }

    init(
        transaction: UInt64, updateID: UInt64, root: UInt64, keyCount: UInt64, heapEnd: UInt64, bootID: BootID,
        time: UInt64, flags: UInt64, appliedRecordChecksum: UInt32? = nil
    ) {
        self.transaction = transaction
        self.updateID = updateID
        self.root = root
        self.keyCount = keyCount
        self.heapEnd = heapEnd
        self.bootID = bootID
        self.time = time
        self.flags = flags
        self.appliedRecordChecksum = appliedRecordChecksum
    }
}
