import Foundation
import Testing
@testable import WhyCache
@testable import WhyCacheState

/// Recovery from a writer that died at one precise moment, built by editing
/// the file's words the way such a death leaves them (a random SIGKILL
/// reaches these moments too rarely to rely on).
@Suite struct SharedStateRecoveryTests {
    /// The writer of transaction 2 wrote its retire lists — which may lie
    /// beyond the heap end of the last commit, where they were carved from
    /// fresh space — and died before publishing. The next writer must drop
    /// those lists and carry on from commit 1.
    @Test func aWriterThatDiedAfterWritingItsRetireListsIsRecovered() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let file = try SharedStateFile.open(at: path)
            let first = try file.beginWrite()
            for index in 0..<2_000 { try first.setValue(Array("v\(index)".utf8), forKey: Array("key\(index)".utf8)) }
            try first.setUpdateID(1)
            try first.commit()
            let firstCommit = file.mapped.word(at: FileLayout.currentCommitOffset)
            let firstHeapEnd = try CommitRecord(at: Int(firstCommit), in: file.mapped).heapEnd

            let second = try file.beginWrite()
            for index in 0..<2_000 { try second.setValue(Array("w\(index)".utf8), forKey: Array("key\(index)".utf8)) }
            try second.setUpdateID(2)
            try second.commit()
            let newestRetireList = file.mapped.word(at: FileLayout.pendingHeadOffset)
            #expect(newestRetireList >= firstHeapEnd, "the test needs a retire list beyond the first commit's heap")

            // What a death between writing the retire lists and publishing leaves.
            file.mapped.setWord(2, at: FileLayout.writerDirtyOffset)
            file.mapped.atomicWord(at: FileLayout.currentCommitOffset).store(firstCommit, ordering: .sequentiallyConsistent)

            let reopened = try SharedStateFile.open(at: path)
            #expect(try reopened.updateID() == 1)
            let third = try reopened.beginWrite()
            try third.setValue(Array("x".utf8), forKey: Array("key0".utf8))
            try third.setUpdateID(3)
            try third.commit()
            #expect(try reopened.verify() == 2_000)
            let snapshot = try reopened.snapshot()
            defer { snapshot.close() }
            #expect(try snapshot.value(forKey: Array("key0".utf8)) == Array("x".utf8))
            #expect(try snapshot.value(forKey: Array("key1999".utf8)) == Array("v1999".utf8))
        }
    }
}
