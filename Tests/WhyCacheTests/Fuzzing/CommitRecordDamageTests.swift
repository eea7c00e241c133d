import Foundation
import Testing
import WhyCache

/// Findings of the `state-file` fuzz target (docs/RELIABILITY.md, "Fuzzing"):
/// fields of the current commit record (docs/FORMAT.md §1.7) that a file
/// whose checksums were recomputed over damage may hold.
@Suite struct CommitRecordDamageTests {
    /// Offsets of docs/FORMAT.md §1.2 and §1.7.
    static let currentCommitOffset = 64
    static let commitChecksumOffset = 4
    static let commitKeyCountOffset = 32

    /// A key count that no heap can hold (here 2^64 − 1) made `statistics()`
    /// and `snapshot()` trap converting it to an `Int`. The commit record is
    /// refused at open, like any other damage to it.
    @Test func aKeyCountBeyondTheHeapIsReportedAtOpen() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            do {
                let file = try SharedStateFile.open(at: path)
                try file.write { transaction in
                    try transaction.setValue(Array("blue".utf8), forKey: Array("color".utf8))
                    try transaction.setUpdateID(1)
                }
            }
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let commit = Int(bytes[Self.currentCommitOffset..<Self.currentCommitOffset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            bytes.replaceSubrange(commit + Self.commitKeyCountOffset..<commit + Self.commitKeyCountOffset + 8, with: [UInt8](repeating: 0xFF, count: 8))
            let checksum = CRC32C.checksum(bytes[commit + 8..<commit + 128])
            bytes.replaceSubrange(
                commit + Self.commitChecksumOffset..<commit + Self.commitChecksumOffset + 4, with: withUnsafeBytes(of: checksum.littleEndian) { Array($0) })
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            #expect {
                _ = try SharedStateFile.open(at: path)
            } throws: { error in
                guard case StateFileError.corrupted(_, let reason) = error else { return false }
                return reason.contains("more than its heap can hold")
            }
        }
    }
}
