import Testing
@testable import WhyCache
@testable import WhyCacheState

/// The heap allocator of a write transaction, for the tests that drive it
/// (and the tree writer built on it) directly.
enum AllocatorFixture {
    /// An allocator for a transaction on a new state file holding one key,
    /// `k`, under the writer lock, started as `SharedStateFile.beginWrite`
    /// starts one; `body` also gets the commit it starts from. Nothing it
    /// does is committed: the writer area is left dirty, as a writer that
    /// died would leave it. After `body`, the next transaction must rebuild
    /// the area from the last commit (`recover`) and the file stay whole.
    static func withAllocator(_ body: (inout SpaceAllocator, MappedFile, CommitRecord) throws -> Void) throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state")
            try file.write { transaction in try transaction.setValue(bytes("before"), forKey: bytes("k")) }
            let mapped = file.mapped
            let lock = try mapped.lockWriter()
            do {
                let offset = Int(mapped.word(at: FileLayout.currentCommitOffset))
                let commit = try CommitRecord(at: offset, in: mapped)
                try SpaceAllocator.prepareWriterArea(file: mapped, commit: commit, commitOffset: offset)
                mapped.setWord(commit.transaction + 1, at: FileLayout.writerDirtyOffset)
                var allocator = SpaceAllocator(file: mapped, transaction: commit.transaction + 1)
                try body(&allocator, mapped, commit)
            } catch {
                mapped.unlockWriter(lock)
                throw error
            }
            mapped.unlockWriter(lock)
            try file.write { transaction in try transaction.setValue(bytes("after"), forKey: bytes("k")) }
            #expect(try file.verify() == 1)
            #expect(try file.value(forKey: bytes("k")) == bytes("after"))
        }
    }
}
