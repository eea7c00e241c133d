import Foundation
import Testing
import WhyCache

/// Damaged retire lists (FORMAT.md section 1.9): a retire list names blocks
/// that go back to the free lists once no reader needs them, so an entry
/// changed to name a block the tree still uses would have that block handed
/// out again and overwritten — a write that turns a damaged file into a
/// worse one (found by the fault-injection harness's damage phase). Each
/// list carries a checksum, checked before any block it names is freed: the
/// write that meets the damage fails, nothing stored changes, and the next
/// write works, because the failed transaction leaves the allocator to be
/// rebuilt from what the last commit reaches.
@Suite struct RetireListCheckTests {
    /// Offsets of the header (FORMAT.md section 1.2).
    static let creationFlagsOffset = 48
    static let currentCommitOffset = 64
    static let pendingHeadOffset = 280
    /// Creation flag bit 3: retire lists carry checksums.
    static let checksummedRetireListsFlag: UInt8 = 0x08
    /// Offsets in a retire list and a commit record (FORMAT.md sections 1.9, 1.7).
    static let retireCountOffset = 16
    static let retireEntriesOffset = 24
    static let commitRootOffset = 24

    /// Keys overwritten in several transactions of the file at `path`, so
    /// that the last one retired blocks; no process has the file open
    /// afterwards, so the newest retire list is reclaimed by the next write.
    private func overwriteKeys(_ path: String) throws -> [[UInt8]: [UInt8]] {
        let file = try SharedStateFile.open(at: path)
        var expected: [[UInt8]: [UInt8]] = [:]
        for round in 0..<4 {
            try file.write { transaction in
                for index in 0..<40 {
                    let value = Array(repeating: UInt8(round), count: 20 + index)
                    try transaction.setValue(value, forKey: bytes("k\(index)"))
                    expected[bytes("k\(index)")] = value
                }
            }
        }
        return expected
    }

    /// The soak finding: the first entry of the newest retire list changed
    /// to name the root node, which the tree still uses.
    @Test func anEntryNamingALiveBlockIsRefusedThenRepaired() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let expected = try overwriteKeys(path)
            var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(raw[Self.creationFlagsOffset] & Self.checksummedRetireListsFlag != 0, "new files checksum their retire lists")
            let list = Int(stateFileWord(raw, at: Self.pendingHeadOffset))
            try #require(list != 0, "no retire list")
            let countWord = stateFileWord(raw, at: list + Self.retireCountOffset)
            #expect(countWord & 0xFFFF_FFFF > 0)
            #expect(countWord >> 32 != 0, "the list's checksum is stored beside its count")
            let commit = Int(stateFileWord(raw, at: Self.currentCommitOffset))
            let root = stateFileWord(raw, at: commit + Self.commitRootOffset)
            let entry = stateFileWord(raw, at: list + Self.retireEntriesOffset)
            setStateFileWord(entry & 0xFF00_0000_0000_0000 | root, in: &raw, at: list + Self.retireEntriesOffset)
            try Data(raw).write(to: URL(fileURLWithPath: path))

            let file = try SharedStateFile.open(at: path)
            #expect {
                try file.write { transaction in
                    for index in 0..<200 { try transaction.setValue(Array(repeating: 7, count: 8 + index), forKey: bytes("new\(index)")) }
                }
            } throws: { error in
                guard case StateFileError.corrupted(_, let reason) = error else { return false }
                return reason.contains("fails its checksum")
            }
            for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
            #expect(try file.value(forKey: bytes("new0")) == nil)
            // The refused transaction left the allocator to be rebuilt from
            // the tree, without the damaged list: every later write works.
            for round in 0..<3 {
                try file.write { transaction in
                    for index in 0..<200 { try transaction.setValue(bytes("after \(round) \(index)"), forKey: bytes("new\(index)")) }
                }
            }
            for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
            #expect(try file.value(forKey: bytes("new199")) == bytes("after 2 199"))
            #expect(try file.verify() == expected.count + 200)
        }
    }

    /// A list whose stored checksum alone was changed is refused the same
    /// way: the checksum, not the entries' plausibility, decides.
    @Test func aDamagedChecksumIsRefused() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let expected = try overwriteKeys(path)
            var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let list = Int(stateFileWord(raw, at: Self.pendingHeadOffset))
            try #require(list != 0, "no retire list")
            raw[list + Self.retireCountOffset + 5] ^= 0x10
            try Data(raw).write(to: URL(fileURLWithPath: path))

            let file = try SharedStateFile.open(at: path)
            #expect(throws: StateFileError.self) {
                try file.write { transaction in try transaction.setValue(bytes("v"), forKey: bytes("added")) }
            }
            try file.write { transaction in try transaction.setValue(bytes("v"), forKey: bytes("added")) }
            for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
            #expect(try file.verify() == expected.count + 1)
        }
    }

    /// A file created before the checksums existed (creation flag bit 3
    /// clear) keeps plain 8-byte counts: its lists are written, reclaimed and
    /// reused as before, and no checksum appears in them.
    @Test func aFileWithoutTheFlagKeepsPlainRetireLists() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            _ = try SharedStateFile.open(at: path)
            var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            raw[Self.creationFlagsOffset] &= ~Self.checksummedRetireListsFlag
            resealStateFileHeader(&raw)
            try Data(raw).write(to: URL(fileURLWithPath: path))
            let expected = try overwriteKeys(path)
            let file = try SharedStateFile.open(at: path)
            for (key, value) in expected { #expect(try file.value(forKey: key) == value) }
            #expect(try file.verify() == expected.count)
            let words = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(words[Self.creationFlagsOffset] & Self.checksummedRetireListsFlag == 0)
            let list = Int(stateFileWord(words, at: Self.pendingHeadOffset))
            try #require(list != 0, "no retire list")
            let countWord = stateFileWord(words, at: list + Self.retireCountOffset)
            #expect(countWord > 0 && countWord >> 32 == 0, "an unflagged file got a checksum")
        }
    }
}
