import Foundation
import Glibc
import Testing
@testable import WhyCache
@testable import WhyCacheState

/// A damaged host must not seed the fleet: a state whose tree breaks its
/// invariants in a way that a walk of its keys does not notice is refused by
/// a snapshot (nothing written) and by a history rewrite (nothing published,
/// nothing removed).
@Suite struct DamagedStateSeedingTests {
    /// 100 keys `k` + one byte: the root is a dense node (more than 48 children).
    static let entries = (0..<100).map { (key: [UInt8(ascii: "k"), UInt8($0)], value: bytes("v\($0)")) }

    /// Lowers the child count of the root node of the state file at `path`
    /// by one: every child is still there, so a walk of the keys finds all
    /// of them in order and as many as the commit record says, but the
    /// node's count no longer matches its children.
    static func breakRootCount(of path: String) throws {
        let file = try SharedStateFile.open(at: path)
        let view = try file.snapshot()
        let root = Int(view.pin.root)
        view.close()
        let descriptor = open(path, O_RDWR)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var count: UInt16 = 0
        #expect(pread(descriptor, &count, 2, off_t(root + 4)) == 2)
        #expect(UInt16(littleEndian: count) == 100, "the root is the dense node of the 100 keys")
        var lowered = (UInt16(littleEndian: count) - 1).littleEndian
        #expect(pwrite(descriptor, &lowered, 2, off_t(root + 4)) == 2)
    }

    @Test func aSnapshotRefusesATreeThatBreaksItsInvariantsAndWritesNothing() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let file = try makeInitializedState(at: path, entries: Self.entries, updateID: 7)
            #expect(try snapshotBytes(of: file).summary.header.keyCount == 100)
            try Self.breakRootCount(of: path)
            // The keys still read back whole: only the structure check sees it.
            let keys = try file.snapshot()
            #expect(try keys.count == 100 && keys.keys(in: .all).count == 100)
            keys.close()
            let view = try file.snapshot()
            defer { view.close() }
            var written = 0
            do throws(SnapshotError) {
                try SnapshotWriter().write(view, to: { written += $0.count })
                Issue.record("a damaged state was written as a snapshot")
            } catch {
                guard case .stateFile(.corrupted) = error else {
                    Issue.record("expected a corrupted state file, got \(error)")
                    return
                }
            }
            #expect(written == 0)
        }
    }

    @Test func aHistoryRewriteRefusesADamagedScratchStateAndChangesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory + "/log")
            for entry in Self.entries {
                _ = try await store.append(try LogRecord([.set(key: entry.key, value: entry.value)]).encoded())
            }
            let scratchDirectory = directory + "/scratch"
            try FileManager.default.createDirectory(atPath: scratchDirectory, withIntermediateDirectories: true)
            let rewriter = HistoryRewriter(datastore: store, scratchDirectory: scratchDirectory)
            await #expect(throws: CacheError.self) {
                _ = try await rewriter.rewrite(through: 100, keeping: nil) { step in
                    // Between the build and the checkpoint: damage the scratch state.
                    guard case .writingCheckpoint = step else { return }
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: scratchDirectory)) ?? []
                    let scratch = names.first { $0.hasPrefix("whycache-rewrite.") && !$0.contains(".run") }
                    guard let scratch else {
                        Issue.record("no scratch file in \(names)")
                        return
                    }
                    do { try Self.breakRootCount(of: scratchDirectory + "/" + scratch) } catch { Issue.record("\(error)") }
                }
            }
            #expect(try await store.latestCheckpoint() == nil)
            #expect(try await store.firstRetainedUpdateID() == 1)
            #expect(try await store.latestUpdateID() == 100)
        }
    }
}
