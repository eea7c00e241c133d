import WhyCacheSupport

/// Recovery: rebuilding the allocator's lists from the last published commit
/// after a writer died mid-transaction (see ``SpaceAllocator``'s crash-safety
/// note and docs/FORMAT.md).
extension SpaceAllocator {
    /// A heap block that recovery must keep: its offset and the bytes of its
    /// whole size class.
    typealias LiveBlock = (offset: Int, size: Int)

    /// Makes the writer area of `file` fit for a transaction that follows
    /// `commit` (at `commitOffset`), under the writer lock: rebuilds the
    /// allocator's lists (``recover(file:commit:commitOffset:)``) when the
    /// previous writer died mid-transaction (or could not clean up), or when
    /// the machine restarted since they were last trusted (see
    /// `FileLayout.writerBootIDOffset`), then checks the words it will use
    /// (``checkWriterArea(file:commit:)``).
    static func prepareWriterArea(file: MappedFile, commit: CommitRecord, commitOffset: Int) throws(StateFileError) {
        let boot = BootID.current
        let writerBoot = BootID(high: file.word(at: FileLayout.writerBootIDOffset), low: file.word(at: FileLayout.writerBootIDOffset + 8))
        if file.word(at: FileLayout.writerDirtyOffset) != 0 || writerBoot != boot {
            try recover(file: file, commit: commit, commitOffset: commitOffset)
            file.setWord(boot.high, at: FileLayout.writerBootIDOffset)
            file.setWord(boot.low, at: FileLayout.writerBootIDOffset + 8)
        }
        try checkWriterArea(file: file, commit: commit)
    }

    /// Rebuilds the free lists and retire lists from the last published commit.
    ///
    /// Live blocks are: the commit record, every node and leaf its tree
    /// reaches, and the retire lists of committed transactions with every
    /// block they name (old readers may be reading those). Retire lists tagged
    /// with a transaction newer than the commit were written by a writer that
    /// died before publishing; the blocks they name are still in the tree, so
    /// the lists are dropped. Everything else below the commit's heap end is
    /// carved into free blocks; the heap beyond it is unused.
    ///
    /// **Crash safety.** Recovery writes the writer area, the first words
    /// of free blocks and the links between kept retire lists — never a
    /// block the commit reaches — and derives everything from the commit and
    /// the chain it walks, which a relink leaves walkable from the old head
    /// (the dropped lists still point on). A recovery that dies midway has
    /// not yet written the boot id (``prepareWriterArea(file:commit:commitOffset:)``)
    /// and has not cleared the dirty word, so the next writer recovers again
    /// from the same commit.
    static func recover(file: MappedFile, commit: CommitRecord, commitOffset: Int) throws(StateFileError) {
        let heapEnd = Int(commit.heapEnd)
        var live: [LiveBlock] = [(commitOffset, FileLayout.commitRecordSize)]
        try collectTree(commit.root, reader: TrieReader(file: file, heapEnd: heapEnd), depth: 0, into: &live)
        let pending = try keepCommittedRetireLists(file: file, commit: commit, into: &live)
        try rebuildFreeLists(file: file, around: live, heapEnd: heapEnd)
        file.setWord(UInt64(heapEnd), at: FileLayout.bumpOffset)
        file.setWord(UInt64(pending.head), at: FileLayout.pendingHeadOffset)
        file.setWord(UInt64(pending.bytes), at: FileLayout.pendingBytesOffset)
    }

    /// Walks the chain of retire lists from its head, unlinks the lists a
    /// writer newer than `commit` left (it died before publishing), and adds
    /// each kept list and every block it names to `live`. Returns the head
    /// of the kept chain (0: none) and the bytes its lists name.
    private static func keepCommittedRetireLists(
        file: MappedFile, commit: CommitRecord, into live: inout [LiveBlock]
    ) throws(StateFileError) -> (head: Int, bytes: Int) {
        let heapEnd = Int(commit.heapEnd)
        // The dead writer's own retire lists (tagged with a newer transaction)
        // head the chain, and may lie beyond the commit's heap end, in space
        // it carved after the commit: they only have to lie within the file.
        let fileEnd = try file.currentSize()
        var list = Int(truncatingIfNeeded: file.word(at: FileLayout.pendingHeadOffset))
        var keptHead = 0
        var lastKept = 0
        var pendingBytes = 0
        var remaining = 1 << 32  // guards against a cycle in a damaged chain
        while list != 0 {
            remaining -= 1
            guard remaining > 0, list & 7 == 0, list >= file.heapStart, list <= fileEnd - FileLayout.retireListHeaderSize
            else { throw .corrupted(path: file.path, reason: "retire list chain leaves the file") }
            let older = Int(truncatingIfNeeded: file.word(at: list + FileLayout.retireOlderOffset))
            guard file.word(at: list + FileLayout.retireTransactionOffset) <= commit.transaction else {
                // Written by the writer that died before publishing: dropped.
                list = older
                continue
            }
            guard list <= heapEnd - FileLayout.retireListHeaderSize else {
                throw .corrupted(path: file.path, reason: "retire list chain leaves the heap")
            }
            let count = retireCount(of: list, in: file)
            guard count >= 0, count <= FileLayout.retireListCapacity, list + FileLayout.retireListHeaderSize + count * 8 <= heapEnd else {
                throw .corrupted(path: file.path, reason: "retire list at \(list) is too long")
            }
            // A kept list was written before the commit was published (and,
            // in a durable file, flushed with it), so it is whole: a
            // mismatch is damage, and its entries cannot be trusted.
            try checkRetireChecksum(of: list, count: count, in: file)
            if lastKept == 0 { keptHead = list } else { file.setWord(UInt64(list), at: lastKept + FileLayout.retireOlderOffset) }
            lastKept = list
            live.append((list, SizeClass(fitting: FileLayout.retireListHeaderSize + count * 8)?.blockSize ?? 0))
            for index in 0..<count {
                let entry = file.word(at: list + FileLayout.retireListHeaderSize + index * 8)
                guard let sizeClass = SizeClass(index: Int(entry >> 56)) else {
                    throw .corrupted(path: file.path, reason: "retire list entry with an unknown size class")
                }
                live.append((Int(entry & 0x00FF_FFFF_FFFF_FFFF), sizeClass.blockSize))
                pendingBytes += sizeClass.blockSize
            }
            list = older
        }
        if lastKept != 0 { file.setWord(0, at: lastKept + FileLayout.retireOlderOffset) }
        return (keptHead, pendingBytes)
    }

    /// Empties every free list and refills them with the gaps between the
    /// `live` blocks below `heapEnd`, each gap cut into the largest blocks
    /// that fit; counts the free bytes anew.
    ///
    /// - Throws: ``StateFileError/corrupted(path:reason:)`` when two live
    ///   blocks overlap or one lies outside the heap.
    private static func rebuildFreeLists(file: MappedFile, around live: [LiveBlock], heapEnd: Int) throws(StateFileError) {
        for index in 0..<SizeClass.count { file.setWord(0, at: FileLayout.freeListHeadsOffset + index * 8) }
        file.setWord(0, at: FileLayout.freeBytesOffset)
        var allocator = SpaceAllocator(file: file, transaction: 0)
        var cursor = file.heapStart
        func carve(through end: Int) throws(StateFileError) {
            while end - cursor >= 8 {
                // The largest class not larger than the gap (the smallest class is 8 bytes).
                guard let sizeClass = SizeClass.largest(notAbove: end - cursor) else { return }
                try allocator.push(cursor, sizeClass)  // counts the bytes in freeBytes
                cursor += sizeClass.blockSize
            }
        }
        for block in live.sorted(by: { $0.offset < $1.offset }) {
            guard block.offset >= cursor || block.offset + block.size <= cursor else {
                throw .corrupted(path: file.path, reason: "blocks overlap at \(block.offset)")
            }
            guard block.offset >= file.heapStart, block.offset + block.size <= heapEnd else {
                throw .corrupted(path: file.path, reason: "block at \(block.offset) lies outside the heap")
            }
            if block.offset > cursor { try carve(through: block.offset) }
            cursor = max(cursor, block.offset + block.size)
        }
        try carve(through: heapEnd)
    }

    /// Adds to `live` the blocks of the tree under `reference`: every inner
    /// node and leaf, each counted with the bytes of its whole size class.
    private static func collectTree(
        _ reference: UInt64, reader: TrieReader, depth: Int, into live: inout [LiveBlock]
    ) throws(StateFileError) {
        guard reference != 0 else { return }
        guard depth <= WhyCacheLimits.maximumKeyLength + 1, live.count <= (reader.limit - reader.heapStart) / 8 else {
            throw reader.corrupted("the tree reaches more blocks than the heap holds")
        }
        // A block occupies its whole size class, not just the bytes it uses.
        if NodeRef.isLeaf(reference) {
            let leaf = try reader.leaf(reference)
            live.append((NodeRef.offset(reference), SizeClass(fitting: leaf.blockSize)?.blockSize ?? leaf.blockSize))
            return
        }
        let node = try reader.inner(reference)
        live.append((NodeRef.offset(reference), SizeClass(fitting: node.blockSize)?.blockSize ?? node.blockSize))
        try collectTree(node.terminal, reader: reader, depth: depth + 1, into: &live)
        let slots = node.isDense ? 256 : node.count
        for index in 0..<slots {
            try collectTree(node.child(at: index), reader: reader, depth: depth + 1, into: &live)
        }
    }
}
