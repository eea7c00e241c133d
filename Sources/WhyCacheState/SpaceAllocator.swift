import WhyCacheSupport

/// Hands out and takes back heap blocks for one write transaction.
///
/// State (all in the header's writer area, touched only under the writer lock):
/// - a free list per `SizeClass`: free blocks linked through their first word;
/// - the bump pointer: the end of the carved heap; blocks beyond it come from
///   growing the file;
/// - the retire lists: blocks replaced by committed transactions that old
///   readers may still be reading, newest list first, each tagged with the
///   transaction that retired them.
///
/// **Crash safety.** A transaction pops free blocks and overwrites them, so
/// the free lists are only trustworthy between transactions. The writer sets
/// the dirty word before its first change and clears it after it commits or
/// abandons; a writer that finds it set (its predecessor died) calls
/// `recover`, which rebuilds every list from what the last commit can reach.
/// The tree itself never depends on this: a crash leaves the last published
/// commit intact, because nothing it reaches is ever written in place.
///
/// **Damage.** No file checksum covers these words, and a damaged one that
/// passed the bounds checks would hand out a block the tree still uses. So
/// free-list words carry check tags (docs/FORMAT.md section 1.8) and retire
/// lists a checksum (section 1.9), both checked before a block they name is
/// handed out or freed; a mismatch fails the transaction with `corrupted`,
/// and the lists are rebuilt from the last commit.
struct SpaceAllocator {
    let file: MappedFile
    let writer: NodeWriter
    let transaction: UInt64
    /// Blocks at or above this offset were carved by this transaction.
    let transactionStartBump: Int
    /// Committed blocks this transaction replaced: `offset | class << 56`.
    private(set) var retired: [UInt64] = []
    /// Whether this transaction took any block (and so may have overwritten free space).
    private(set) var hasAllocated = false

    init(file: MappedFile, transaction: UInt64) {
        self.file = file
        self.writer = NodeWriter(base: file.base)
        self.transaction = transaction
        self.transactionStartBump = Int(truncatingIfNeeded: file.word(at: FileLayout.bumpOffset))
    }

    // MARK: Writer-area fields

    /// The head of `sizeClass`'s free list, its check tag verified.
    private func head(_ sizeClass: SizeClass) throws(StateFileError) -> Int {
        let word = file.word(at: FileLayout.freeListHeadsOffset + sizeClass.index * 8)
        return try untagged(word, expecting: { Self.headTag(of: $0, sizeClass) }, what: "the head of free list \(sizeClass.index)")
    }
    private func setHead(_ offset: Int, _ sizeClass: SizeClass) {
        file.setWord(tagged(offset, Self.headTag(of: offset, sizeClass)), at: FileLayout.freeListHeadsOffset + sizeClass.index * 8)
    }

    // MARK: Free-list check tags (docs/FORMAT.md section 1.8)

    /// `offset` with `tag` in the top bits, or alone in a file without tags;
    /// 0 (the end of a list) is never tagged.
    private func tagged(_ offset: Int, _ tag: UInt64) -> UInt64 {
        let word = UInt64(truncatingIfNeeded: offset)
        return file.taggedFreeLists && offset != 0 ? word | tag : word
    }

    /// The offset in the free-list `word`, after checking its tag against
    /// `expected(offset)`.
    ///
    /// - Throws: ``StateFileError/corrupted(path:reason:)`` when the tag
    ///   does not match: the word was damaged, and following it would hand
    ///   out a block that may be in use.
    private func untagged(
        _ word: UInt64, expecting expected: (Int) -> UInt64, what: @autoclosure () -> String
    ) throws(StateFileError) -> Int {
        guard file.taggedFreeLists else { return Int(truncatingIfNeeded: word) }
        let offset = Int(truncatingIfNeeded: word & FileLayout.freeListOffsetMask)
        guard word == (offset == 0 ? 0 : UInt64(offset) | expected(offset)) else {
            throw .corrupted(path: file.path, reason: "\(what()) (0x\(String(word, radix: 16))) fails its check tag")
        }
        return offset
    }

    /// The tag of a head word naming the block at `offset`.
    static func headTag(of offset: Int, _ sizeClass: SizeClass) -> UInt64 {
        checkTag(UInt64(truncatingIfNeeded: offset), UInt64(sizeClass.index) | 1 << 32)
    }

    /// The tag of the link word stored in the free block at `block`, naming `next`.
    ///
    /// Defined for every value of `next`: in a file without check tags,
    /// ``push(_:_:)`` links whatever word the head holds, damaged or not
    /// (following it is checked when a block is taken, in ``allocate(_:)``).
    static func linkTag(in block: Int, to next: Int, _ sizeClass: SizeClass) -> UInt64 {
        checkTag(
            UInt64(truncatingIfNeeded: block) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: next),
            UInt64(sizeClass.index) | 2 << 32)
    }

    /// 16 bits of a mix of `a` and `b`, in the top bits of a word.
    private static func checkTag(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var z = a &+ b &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z & ~FileLayout.freeListOffsetMask
    }
    private func adjust(_ field: Int, by delta: Int) {
        file.setWord(UInt64(bitPattern: Int64(bitPattern: file.word(at: field)) &+ Int64(delta)), at: field)
    }
    var bump: Int { Int(truncatingIfNeeded: file.word(at: FileLayout.bumpOffset)) }

    // MARK: Allocation

    /// A block of at least `size` bytes, owned by this transaction.
    mutating func allocate(_ size: Int) throws(StateFileError) -> Int {
        guard let sizeClass = SizeClass(fitting: size) else { throw .valueTooLong(size) }
        hasAllocated = true
        let offset = try head(sizeClass)
        if offset != 0 {
            // In a file without check tags the head may hold any value: no arithmetic on it can overflow.
            guard offset & 7 == 0, offset >= file.heapStart, offset <= bump - sizeClass.blockSize else {
                throw .corrupted(path: file.path, reason: "free list \(sizeClass.index) points outside the heap")
            }
            let next = try untagged(
                file.word(at: offset), expecting: { Self.linkTag(in: offset, to: $0, sizeClass) },
                what: "the link of free block \(offset) (list \(sizeClass.index))")
            setHead(next, sizeClass)
            adjust(FileLayout.freeBytesOffset, by: -sizeClass.blockSize)
            return offset
        }
        return try carve(sizeClass)
    }

    /// The most bytes one carve takes from the bump pointer, and the share
    /// of the carved heap it may reach (1/256): a small file grows block by
    /// block, a file past 4 MiB in runs of 16 KiB.
    static let runBytes = 16 << 10
    static let runShareShift = 8

    /// Takes a block of `sizeClass` at the bump pointer, together with a run
    /// of more blocks of the same class right after it, which go onto its
    /// free list (lowest first out), so that blocks of one class lie together
    /// in the heap.
    ///
    /// Why runs: a load takes its leaves and its inner nodes in the order
    /// its keys arrive, so without runs every inner node lies among the
    /// leaves around it and a lookup's inner nodes spread over every page
    /// of the heap. The classes of inner nodes and of leaves differ (a node
    /// of workload W is 64 to 120 bytes, its leaves 104), so runs gather the
    /// nodes of a level on fewer pages, in cache lines that hold no leaf
    /// bytes: at 1M keys of W a get took 0.84–0.90 of the time
    /// (docs/PERFORMANCE.md).
    ///
    /// The run's other blocks are ordinary free blocks: counted in
    /// `freeBytes`, and, when the writer dies before publishing, returned to
    /// the bump pointer by recovery like everything past the last commit's
    /// heap end.
    private mutating func carve(_ sizeClass: SizeClass) throws(StateFileError) -> Int {
        let start = bump
        let size = sizeClass.blockSize
        let run = min(Self.runBytes, (start - file.heapStart) >> Self.runShareShift)
        let end = start + size * max(1, run / size)
        try file.grow(toCover: end)
        file.setWord(UInt64(end), at: FileLayout.bumpOffset)
        var block = end - size
        while block > start {
            try push(block, sizeClass)
            block -= size
        }
        return start
    }

    /// Returns a block nobody else can see (never published, or reclaimed) to its free list.
    mutating func free(_ offset: Int, size: Int) throws(StateFileError) {
        guard let sizeClass = SizeClass(fitting: size) else { return }
        try push(offset, sizeClass)
    }

    /// Puts the free block at `offset`, of `sizeClass`, at the head of its
    /// free list and counts its bytes as free.
    mutating func push(_ offset: Int, _ sizeClass: SizeClass) throws(StateFileError) {
        // The head is checked before it goes into a new link: a damaged one
        // must not come out of a push with a valid tag.
        let next = try head(sizeClass)
        file.setWord(tagged(next, Self.linkTag(in: offset, to: next, sizeClass)), at: offset)
        setHead(offset, sizeClass)
        adjust(FileLayout.freeBytesOffset, by: sizeClass.blockSize)
    }

    /// Releases a committed block that readers may still be reading.
    mutating func retire(_ offset: Int, size: Int) {
        guard let sizeClass = SizeClass(fitting: size) else { return }
        retired.append(UInt64(offset) | UInt64(sizeClass.index) << 56)
    }

    // MARK: Retire lists

    /// Frees every retire list that no live reader can still need: lists
    /// retired by transaction `x <= oldestPinned`.
    mutating func reclaim(oldestPinned: UInt64) throws(StateFileError) {
        var newer = 0
        var list = Int(truncatingIfNeeded: file.word(at: FileLayout.pendingHeadOffset))
        while list != 0 {
            _ = try checkRetireList(list)
            if file.word(at: list + FileLayout.retireTransactionOffset) <= oldestPinned { break }
            newer = list
            list = Int(truncatingIfNeeded: file.word(at: list + FileLayout.retireOlderOffset))
        }
        guard list != 0 else { return }
        // Detach first, then free: the lists below `newer` are no longer reachable.
        if newer == 0 {
            file.setWord(0, at: FileLayout.pendingHeadOffset)
        } else {
            file.setWord(0, at: newer + FileLayout.retireOlderOffset)
        }
        while list != 0 {
            let count = try checkRetireList(list)
            let older = Int(truncatingIfNeeded: file.word(at: list + FileLayout.retireOlderOffset))
            // Before a block it names goes back to a free list: a damaged
            // entry would free a block the tree still uses.
            try Self.checkRetireChecksum(of: list, count: count, in: file)
            for index in 0..<count {
                let entry = file.word(at: list + FileLayout.retireListHeaderSize + index * 8)
                guard let sizeClass = SizeClass(index: Int(entry >> 56)) else {
                    throw .corrupted(path: file.path, reason: "retire list entry with an unknown size class")
                }
                let offset = Int(entry & 0x00FF_FFFF_FFFF_FFFF)
                guard offset >= file.heapStart, offset + sizeClass.blockSize <= bump else {
                    throw .corrupted(path: file.path, reason: "retire list entry outside the heap")
                }
                try push(offset, sizeClass)
                adjust(FileLayout.pendingBytesOffset, by: -sizeClass.blockSize)
            }
            try free(list, size: FileLayout.retireListHeaderSize + count * 8)
            list = older
        }
    }

    /// Checks the words of the writer area that the allocator trusts (they
    /// are shared, not covered by a checksum): the bump pointer must lie
    /// between the current commit's heap end and the end of the file, and the
    /// newest retire list inside the carved heap. Free-list heads and links
    /// are checked when used (`allocate`), retire lists when walked.
    static func checkWriterArea(file: MappedFile, commit: CommitRecord) throws(StateFileError) {
        let bump = file.word(at: FileLayout.bumpOffset)
        guard bump & 7 == 0, bump >= commit.heapEnd, bump <= UInt64(file.mapSize), file.fileCovers(Int(bump)) else {
            throw .corrupted(path: file.path, reason: "the allocator's heap end \(bump) is outside the file")
        }
        let list = file.word(at: FileLayout.pendingHeadOffset)
        guard list == 0 || (list & 7 == 0 && list >= UInt64(file.heapStart) && list <= bump - UInt64(FileLayout.retireListHeaderSize))
        else {
            throw .corrupted(path: file.path, reason: "retire list at \(list) is outside the heap")
        }
    }

    /// The transaction of the newest retire list, or 0 when there is none.
    var newestRetiredTransaction: UInt64 {
        let list = Int(truncatingIfNeeded: file.word(at: FileLayout.pendingHeadOffset))
        return list == 0 ? 0 : file.word(at: list + FileLayout.retireTransactionOffset)
    }

    /// Checks that the retire list at `list` and its entries lie in the
    /// carved heap, and returns its entry count.
    private func checkRetireList(_ list: Int) throws(StateFileError) -> Int {
        // Written so that no damaged word can overflow the arithmetic.
        guard list & 7 == 0, list >= file.heapStart, list <= bump - FileLayout.retireListHeaderSize else {
            throw .corrupted(path: file.path, reason: "retire list at \(list) is outside the heap")
        }
        let count = Self.retireCount(of: list, in: file)
        guard count <= FileLayout.retireListCapacity, list + FileLayout.retireListHeaderSize + count * 8 <= bump else {
            throw .corrupted(path: file.path, reason: "retire list at \(list) is outside the heap")
        }
        return count
    }

    /// Writes this transaction's retired blocks into retire lists tagged with
    /// its transaction id and links them in front of the existing ones. Called
    /// by commit before publishing; see `recover` for why an unpublished list
    /// is harmless.
    mutating func writeRetireLists() throws(StateFileError) {
        var start = 0
        let entries = retired
        while start < entries.count {
            let count = min(FileLayout.retireListCapacity, entries.count - start)
            let list = try allocate(FileLayout.retireListHeaderSize + count * 8)
            file.setWord(transaction, at: list + FileLayout.retireTransactionOffset)
            file.setWord(file.word(at: FileLayout.pendingHeadOffset), at: list + FileLayout.retireOlderOffset)
            file.setWord(UInt64(count), at: list + FileLayout.retireCountOffset)
            var bytes = 0
            for index in 0..<count {
                let entry = entries[start + index]
                file.setWord(entry, at: list + FileLayout.retireListHeaderSize + index * 8)
                bytes += SizeClass(index: Int(entry >> 56))?.blockSize ?? 0
            }
            if file.checksummedRetireLists {
                let checksum = Self.retireChecksum(of: list, count: count, in: file)
                file.setWord(UInt64(count) | UInt64(checksum) << 32, at: list + FileLayout.retireCountOffset)
            }
            adjust(FileLayout.pendingBytesOffset, by: bytes)
            file.setWord(UInt64(list), at: FileLayout.pendingHeadOffset)
            start += count
        }
        retired.removeAll()
    }
}

// MARK: Retire-list checksums (docs/FORMAT.md section 1.9)

extension SpaceAllocator {
    /// The number of entries the retire list at `list` claims (not yet
    /// checked against anything): the low 32 bits of its count word in a
    /// file whose lists carry checksums, the whole word in an older file.
    static func retireCount(of list: Int, in file: MappedFile) -> Int {
        let word = file.word(at: list + FileLayout.retireCountOffset)
        return Int(truncatingIfNeeded: file.checksummedRetireLists ? word & 0xFFFF_FFFF : word)
    }

    /// The CRC-32C of the retire list at `list` with `count` entries: its
    /// transaction, its 4-byte count and its entries — everything but the
    /// link to the next list, which reclamation and recovery rewrite.
    /// The caller guarantees the list and its entries lie within the file.
    static func retireChecksum(of list: Int, count: Int, in file: MappedFile) -> UInt32 {
        var checksum = CRC32C()
        file.update(&checksum, withBytesAt: list + FileLayout.retireTransactionOffset, count: 8)
        file.update(&checksum, withBytesAt: list + FileLayout.retireCountOffset, count: 4)
        file.update(&checksum, withBytesAt: list + FileLayout.retireListHeaderSize, count: 8 * count)
        return checksum.value
    }

    /// Checks the stored checksum of the retire list at `list` (with `count`
    /// entries, within the file) in a file whose lists carry checksums.
    ///
    /// - Throws: ``StateFileError/corrupted(path:reason:)`` when it does not
    ///   match: a damaged entry may name a block that is still in use.
    static func checkRetireChecksum(of list: Int, count: Int, in file: MappedFile) throws(StateFileError) {
        guard file.checksummedRetireLists else { return }
        let stored = UInt32(truncatingIfNeeded: file.word(at: list + FileLayout.retireCountOffset) >> 32)
        guard stored == retireChecksum(of: list, count: count, in: file) else {
            throw .corrupted(path: file.path, reason: "retire list at \(list) fails its checksum")
        }
    }
}
