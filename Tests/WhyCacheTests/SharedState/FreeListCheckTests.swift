import Foundation
import Testing
import WhyCache

/// Damaged free lists (FORMAT.md section 1.8): words the allocator takes
/// blocks from are not covered by the file's checksums, so each carries a
/// check tag. A damaged head or link is refused before a block is handed out
/// — the write fails, the lists are rebuilt from the last commit, nothing
/// already stored changes, and the next write works.
@Suite struct FreeListCheckTests {
    /// Offset of the free-list heads in the header (FORMAT.md section 1.2).
    static let freeListHeads = 512
    /// The size classes.
    static let sizeClassCount = 108
    /// The bits of a free-list word that hold the offset.
    static let offsetMask: UInt64 = (1 << 48) - 1

    /// A state file whose free lists hold blocks: keys overwritten, so that
    /// the blocks of the earlier values are freed once no reader needs them.
    private func fileWithFreeBlocks(_ path: String) throws -> [[UInt8]: [UInt8]] {
        let file = try SharedStateFile.open(at: path)
        var expected: [[UInt8]: [UInt8]] = [:]
        for round in 0..<6 {
            try file.write { transaction in
                for index in 0..<40 {
                    let value = Array(repeating: UInt8(round), count: 40 + index)
                    try transaction.setValue(value, forKey: bytes("k\(index)"))
                    expected[bytes("k\(index)")] = value
                }
            }
        }
        return expected
    }

    /// Writes to `path` after `damage` changed its bytes: the first write
    /// fails with `corrupted` and changes nothing; the data is intact; the
    /// next writes work and the file verifies.
    private func expectRefusedThenRepaired(_ path: String, expected: [[UInt8]: [UInt8]], damage: (inout [UInt8]) throws -> Void) throws {
        var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        try damage(&raw)
        try Data(raw).write(to: URL(fileURLWithPath: path))

        let file = try SharedStateFile.open(at: path)
        var refused: StateFileError?
        do {
            // Enough new blocks of every small size to reach the damaged word.
            try file.write { transaction in
                for index in 0..<200 { try transaction.setValue(Array(repeating: 7, count: 8 + index % 200), forKey: bytes("new\(index)")) }
            }
        } catch let error as StateFileError {
            refused = error
        }
        guard case .corrupted(_, let reason)? = refused else {
            Issue.record("the damaged free list was used: \(String(describing: refused))")
            return
        }
        #expect(reason.contains("check tag"), "\(reason)")
        for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
        #expect(try file.value(forKey: bytes("new0")) == nil)
        try file.write { transaction in
            for index in 0..<200 { try transaction.setValue(bytes("after \(index)"), forKey: bytes("new\(index)")) }
        }
        for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
        #expect(try file.value(forKey: bytes("new199")) == bytes("after 199"))
        #expect(try file.verify() == expected.count + 200)
    }

    /// A head moved by 16 bytes (still aligned, inside the heap: the
    /// bounds check alone lets it through, into the middle of a live block).
    @Test func aHeadPointingElsewhereIsRefused() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let expected = try fileWithFreeBlocks(path)
            try expectRefusedThenRepaired(path, expected: expected) { raw in
                let heads = (0..<Self.sizeClassCount).map { Self.freeListHeads + 8 * $0 }
                let damaged = try #require(heads.first { stateFileWord(raw, at: $0) & Self.offsetMask != 0 }, "no free block")
                setStateFileWord(stateFileWord(raw, at: damaged) + 16, in: &raw, at: damaged)
            }
        }
    }

    /// The link inside a free block, changed to name another block.
    @Test func aLinkPointingElsewhereIsRefused() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let expected = try fileWithFreeBlocks(path)
            try expectRefusedThenRepaired(path, expected: expected) { raw in
                let heads = (0..<Self.sizeClassCount).map { Self.freeListHeads + 8 * $0 }
                let head = try #require(heads.first { stateFileWord(raw, at: $0) & Self.offsetMask != 0 }, "no free block")
                let block = Int(stateFileWord(raw, at: head) & Self.offsetMask)
                // Name the block itself: a cycle, or with the old lists a
                // block handed out twice.
                let link = stateFileWord(raw, at: block)
                setStateFileWord((link & ~Self.offsetMask) | UInt64(block), in: &raw, at: block)
            }
        }
    }

    /// A file created before the tags existed (creation flag bit 2 clear)
    /// keeps untagged free-list words: its writes free and reuse blocks as
    /// before, and its words stay untagged.
    @Test func aFileWithoutTheFlagKeepsUntaggedFreeLists() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            _ = try SharedStateFile.open(at: path)
            var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(raw[48] & 0x04 != 0, "new files have tagged free lists")
            raw[48] &= ~0x04
            resealStateFileHeader(&raw)
            try Data(raw).write(to: URL(fileURLWithPath: path))
            let expected = try fileWithFreeBlocks(path)
            let file = try SharedStateFile.open(at: path)
            for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
            #expect(try file.verify() == expected.count)
            let words = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let heads = (0..<Self.sizeClassCount).map { stateFileWord(words, at: Self.freeListHeads + 8 * $0) }
            #expect(heads.contains { $0 != 0 }, "no free block")
            #expect(heads.allSatisfy { $0 & ~Self.offsetMask == 0 }, "an untagged file got tags")
        }
    }
}
