import Testing
@testable import WhyCache
@testable import WhyCacheState

/// The heap allocator of a write transaction, driven directly: carving from
/// the bump pointer, per-class free lists taken last in first out, the free
/// byte count, retire lists freed only once no reader can be pinned before
/// them, refusals of sizes and damaged list words, and the recovery that
/// rebuilds it all when a writer leaves its area dirty.
@Suite struct SpaceAllocatorTests {
    private func freeBytes(_ file: MappedFile) -> Int { Int(file.word(at: FileLayout.freeBytesOffset)) }

    @Test func blocksAreCarvedFromTheBumpAndFreedOnesReusedLastInFirstOut() throws {
        try AllocatorFixture.withAllocator { allocator, file, _ in
            let small = try #require(SizeClass(fitting: 24))
            let start = allocator.bump
            let first = try allocator.allocate(24)
            let second = try allocator.allocate(20)
            #expect(first == start)
            #expect(second == start + small.blockSize)
            #expect(allocator.bump == start + 2 * small.blockSize)
            #expect(allocator.hasAllocated)

            let free = freeBytes(file)
            try allocator.free(first, size: 24)
            try allocator.free(second, size: 24)
            #expect(freeBytes(file) == free + 2 * small.blockSize)
            // Another class never takes a block of this one.
            let large = try allocator.allocate(1000)
            #expect(large == start + 2 * small.blockSize)
            #expect(try allocator.allocate(24) == second)
            #expect(try allocator.allocate(17) == first)
            #expect(freeBytes(file) == free)
            #expect(try allocator.allocate(24) == large + SizeClass(fitting: 1000)!.blockSize)
        }
    }

    /// Past 4 MiB of heap an empty class is carved in runs of 16 KiB
    /// (docs/FORMAT.md §1.8): the next blocks of the class follow the first
    /// from its free list, in address order, and another class starts after
    /// the run. The fixture then checks that recovery takes back the run the
    /// transaction leaves unpublished.
    @Test func aLargeHeapCarvesEachClassInRuns() throws {
        try AllocatorFixture.withAllocator { allocator, file, _ in
            // A small heap grows block by block (the test above); make it large.
            _ = try allocator.allocate(8 << 20)
            let sizeClass = try #require(SizeClass(fitting: 120))
            let perRun = SpaceAllocator.runBytes / sizeClass.blockSize
            let start = allocator.bump
            let free = freeBytes(file)
            let first = try allocator.allocate(120)
            #expect(first == start)
            #expect(allocator.bump == start + perRun * sizeClass.blockSize)
            #expect(freeBytes(file) == free + (perRun - 1) * sizeClass.blockSize)
            for index in 1..<perRun {
                #expect(try allocator.allocate(120) == start + index * sizeClass.blockSize)
            }
            #expect(freeBytes(file) == free)
            // Another class starts after the run; this one, once its run is
            // used up, after that.
            let leaf = try allocator.allocate(104)
            #expect(leaf == start + perRun * sizeClass.blockSize)
            #expect(try allocator.allocate(120) == allocator.bump - perRun * sizeClass.blockSize)
        }
    }

    /// Recovery cuts each gap between live blocks into the largest blocks
    /// that fit: the largest class not above a size, for every size up to
    /// a few doublings and at the edges of the table.
    @Test func theLargestClassNotAboveASizeFitsAndIsTheLargestThatDoes() {
        #expect(SizeClass.largest(notAbove: 7) == nil)
        #expect(SizeClass.largest(notAbove: 0) == nil)
        for size in Array(8...5_000) + [SizeClass.largestBlock - 1, SizeClass.largestBlock, SizeClass.largestBlock + 1, .max / 2] {
            guard let found = SizeClass.largest(notAbove: size) else {
                Issue.record("no class for \(size)")
                continue
            }
            #expect(found.blockSize <= size, "\(size)")
            if let larger = SizeClass(index: found.index + 1) {
                #expect(larger.blockSize > size, "\(size)")
            } else {
                #expect(found.blockSize == SizeClass.largestBlock)
            }
        }
    }

    @Test func aBlockLargerThanTheLargestClassIsRefused() throws {
        try AllocatorFixture.withAllocator { allocator, _, _ in
            let bump = allocator.bump
            #expect(throws: StateFileError.valueTooLong(SizeClass.largestBlock + 1)) {
                try allocator.allocate(SizeClass.largestBlock + 1)
            }
            #expect(allocator.bump == bump)
        }
    }

    /// A free-list head or link whose check tag does not match is refused
    /// (docs/FORMAT.md §1.8): following it could hand out a block in use.
    @Test(arguments: [false, true])
    func aDamagedFreeListWordIsRefusedNotFollowed(damagesTheLink: Bool) throws {
        try AllocatorFixture.withAllocator { allocator, file, _ in
            let sizeClass = try #require(SizeClass(fitting: 64))
            let blocks = [try allocator.allocate(64), try allocator.allocate(64)]
            for block in blocks { try allocator.free(block, size: 64) }
            let word = damagesTheLink ? blocks[1] : FileLayout.freeListHeadsOffset + sizeClass.index * 8
            file.setWord(file.word(at: word) ^ 8, at: word)
            #expect(throws: StateFileError.self) {
                for _ in 0..<2 { _ = try allocator.allocate(64) }
            }
        }
    }

    /// Retired blocks go to a retire list tagged with the transaction; a
    /// reclaim frees them only when the oldest pinned transaction is at
    /// least that one.
    @Test func retiredBlocksAreFreedOnlyOnceNoReaderCanSeeThem() throws {
        try AllocatorFixture.withAllocator { allocator, file, _ in
            // The lists of the transactions before this one go first.
            try allocator.reclaim(oldestPinned: allocator.transaction - 1)
            #expect(allocator.newestRetiredTransaction == 0)
            // Of a class no retire list of three entries falls into.
            let size = 200
            let sizeClass = try #require(SizeClass(fitting: size))
            let blocks = try (0..<3).map { _ in try allocator.allocate(size) }
            let free = freeBytes(file)
            for block in blocks { allocator.retire(block, size: size) }
            try allocator.writeRetireLists()
            #expect(allocator.newestRetiredTransaction == allocator.transaction)
            #expect(Int(file.word(at: FileLayout.pendingBytesOffset)) == 3 * sizeClass.blockSize)

            try allocator.reclaim(oldestPinned: allocator.transaction - 1)
            #expect(allocator.newestRetiredTransaction == allocator.transaction)
            #expect(Int(file.word(at: FileLayout.pendingBytesOffset)) == 3 * sizeClass.blockSize)

            try allocator.reclaim(oldestPinned: allocator.transaction)
            #expect(allocator.newestRetiredTransaction == 0)
            #expect(file.word(at: FileLayout.pendingBytesOffset) == 0)
            // The three blocks, and the list that named them, are free again.
            #expect(freeBytes(file) > free + 3 * sizeClass.blockSize)
            #expect(Set(try (0..<3).map { _ in try allocator.allocate(size) }) == Set(blocks))
        }
    }
}
