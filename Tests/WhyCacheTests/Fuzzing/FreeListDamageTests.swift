import Foundation
import Testing
import WhyCache

/// Findings of the `state-file` fuzz target (docs/RELIABILITY.md, "Fuzzing"):
/// free-list words of a file without check tags (creation flag bit 2 clear,
/// docs/FORMAT.md §1.8) are not verified by a tag, so a damaged one may hold
/// any value; the writer must report it as damage, never trap on it.
@Suite struct FreeListDamageTests {
    /// Offsets of docs/FORMAT.md §1.2.
    static let creationFlagsOffset = 48
    static let pendingHeadOffset = 280
    static let freeListHeadsOffset = 512
    static let sizeClassCount = 108
    static let taggedFreeListsFlag: UInt32 = 4

    /// A state file at `path` with keys written in three transactions (so
    /// that blocks were retired and lists exist), then, with no process
    /// holding it, damaged by `damage` and resealed.
    static func makeDamagedFile(at path: String, _ damage: (inout [UInt8]) -> Void) throws {
        do {
            let file = try SharedStateFile.open(at: path)
            for round in 1...3 {
                try file.write { transaction in
                    for index in 0..<20 { try transaction.setValue(Array("value \(round)".utf8), forKey: Array("key/\(index)".utf8)) }
                    try transaction.setUpdateID(UInt64(round))
                }
            }
        }
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var flags = bytes[creationFlagsOffset..<creationFlagsOffset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        flags &= ~taggedFreeListsFlag
        bytes.replaceSubrange(creationFlagsOffset..<creationFlagsOffset + 4, with: withUnsafeBytes(of: flags.littleEndian) { Array($0) })
        damage(&bytes)
        resealStateFileHeader(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Sets every free-list head to `word`.
    static func setEveryHead(_ word: UInt64, in bytes: inout [UInt8]) {
        for index in 0..<sizeClassCount {
            let offset = freeListHeadsOffset + 8 * index
            bytes.replaceSubrange(offset..<offset + 8, with: withUnsafeBytes(of: word.littleEndian) { Array($0) })
        }
    }

    /// A head far beyond the heap (aligned, positive) was compared with the
    /// heap's end after adding the block size to it, which overflowed: the
    /// writer trapped. It is refused as a head outside the heap.
    @Test func aHeadBeyondTheHeapIsReportedAsDamage() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try Self.makeDamagedFile(at: path) { bytes in
                Self.setEveryHead(0x7FFF_FFFF_FFFF_FFF8, in: &bytes)
                // No retire list: the first block the writer takes comes from a damaged head.
                bytes.replaceSubrange(Self.pendingHeadOffset..<Self.pendingHeadOffset + 8, with: [UInt8](repeating: 0, count: 8))
            }
            let file = try SharedStateFile.open(at: path)
            let transaction = try file.beginWrite()
            #expect {
                try transaction.setValue(Array("new".utf8), forKey: Array("key/new".utf8))
            } throws: { error in
                guard case StateFileError.corrupted(_, let reason) = error else { return false }
                return reason.contains("points outside the heap")
            }
            transaction.abandon()
            #expect(try file.verify() == 20)
        }
    }

    /// A head with its top bit set (a negative offset) went into the link
    /// word of a block returned to its list — when the writer reclaimed a
    /// retire list at the start of a transaction — and converting it for the
    /// link's tag trapped. The transaction starts; the damaged word is
    /// refused once a block is taken from that list.
    @Test func aRetireListIsReclaimedOntoADamagedHead() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try Self.makeDamagedFile(at: path) { bytes in
                Self.setEveryHead(0xA700_0000_0000_0000, in: &bytes)
            }
            let file = try SharedStateFile.open(at: path)
            let transaction = try file.beginWrite()
            // A value of a size no retired block has: its block comes from a damaged head.
            #expect {
                try transaction.setValue([UInt8](repeating: 1, count: 5000), forKey: Array("key/new".utf8))
            } throws: { error in
                guard case StateFileError.corrupted(_, let reason) = error else { return false }
                return reason.contains("points outside the heap")
            }
            transaction.abandon()
            #expect(try file.verify() == 20)
        }
    }
}
