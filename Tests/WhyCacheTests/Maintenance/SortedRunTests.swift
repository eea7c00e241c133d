import Foundation
import Testing
@testable import WhyCache
@testable import WhyCacheSupport

/// The runs of the external sort that builds a state from the log: what a
/// writer writes reads back sorted, one entry per key (the latest), and a
/// run file that cannot be written or read back is a `SortedRunError`,
/// which the cache reports as a failed scratch file, never as a damaged
/// state file.
@Suite struct SortedRunTests {
    private func gather(_ operations: [(LogOperationKind, String, String)]) -> SortedRunWriter {
        var writer = SortedRunWriter(budget: 1 << 20)
        for (kind, key, value) in operations {
            Array(key.utf8).withUnsafeBytes { key in
                Array(value.utf8).withUnsafeBytes { value in writer.append(kind, key: key, value: value) }
            }
        }
        return writer
    }

    private func readAll(_ path: String) throws(SortedRunError) -> [(LogOperationKind, String, String)] {
        let reader = try SortedRunReader(path: path, order: 0)
        var entries: [(LogOperationKind, String, String)] = []
        while !reader.isAtEnd {
            entries.append((reader.kind, String(decoding: reader.key, as: UTF8.self), String(decoding: reader.value, as: UTF8.self)))
            try reader.advance()
        }
        return entries
    }

    @Test func aRunHoldsTheLatestOperationOfEachKeyInKeyOrder() throws {
        try withTemporaryDirectory { directory in
            var writer = gather([(.set, "b", "1"), (.set, "a", "1"), (.delete, "b", ""), (.set, "ab", "2"), (.set, "a", "3")])
            try writer.writeRun(to: directory + "/run")
            #expect(writer.isEmpty)
            let entries = try readAll(directory + "/run")
            #expect(entries.map(\.1) == ["a", "ab", "b"])
            #expect(entries.map(\.2) == ["3", "2", ""])
            #expect(entries.map(\.0) == [.set, .set, .delete])
        }
    }

    @Test func aRunThatCannotBeWrittenOrReadIsAScratchFileFailure() throws {
        try withTemporaryDirectory { directory in
            var writer = gather([(.set, "k", "v")])
            let missing = directory + "/no-such-folder/run"
            #expect(throws: SortedRunError.self) { try writer.writeRun(to: missing) }
            #expect(throws: SortedRunError.self) { _ = try readAll(missing) }
            do throws(SortedRunError) {
                _ = try SortedRunReader(path: missing, order: 0)
                Issue.record("a missing run was opened")
            } catch {
                guard case .systemCall(let failure) = error else {
                    Issue.record("expected a failed system call, got \(error)")
                    return
                }
                #expect(failure == SystemCallError(call: "open", path: missing, errno: ENOENT))
                let cacheError = CacheError(error)
                guard case .scratchFileFailed(let path, let reason) = cacheError else {
                    Issue.record("expected scratchFileFailed, got \(cacheError)")
                    return
                }
                #expect(path == missing)
                #expect(reason.contains("open failed"))
            }
        }
    }

    /// A run cut inside an entry, or holding an unknown kind, is damaged.
    @Test(arguments: [
        [0x01, 0x05, 0x61],  // a key of 5 bytes with 1 present
        [0x07, 0x01, 0x61, 0x00],  // an unknown kind
    ] as [[UInt8]])
    func aDamagedRunIsRefused(bytes: [UInt8]) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/run"
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            do throws(SortedRunError) {
                _ = try readAll(path)
                Issue.record("the damaged run was read")
            } catch {
                guard case .damaged(let damagedPath, _) = error else {
                    Issue.record("expected damaged, got \(error)")
                    return
                }
                #expect(damagedPath == path)
            }
        }
    }
}
