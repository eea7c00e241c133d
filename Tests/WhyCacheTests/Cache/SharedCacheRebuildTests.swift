import Foundation
import Testing
import WhyCache

/// `update()` on a state whose next record was removed by a history rewrite:
/// the state is rebuilt from the latest checkpoint and swapped in atomically.
@Suite struct SharedCacheRebuildTests {
    /// Publishes a checkpoint of `state` at `updateID`: records of sets.
    private static func publishCheckpoint(_ state: [[UInt8]: [UInt8]], at updateID: UInt64, in store: any Datastore) async throws {
        let writer = try await store.beginCheckpoint(at: updateID)
        let keys = state.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var start = 0
        while start < keys.count {
            let chunk = keys[start..<min(start + 50, keys.count)]
            try await writer.append(try LogRecord(chunk.map { .set(key: $0, value: state[$0] ?? []) }).encoded())
            start += chunk.count
        }
        _ = try await writer.publish()
    }

    /// Machines never updated, in the middle of the removed range, and at its
    /// end all converge; a key deleted inside the removed range is gone; a
    /// snapshot taken before the rebuild keeps reading the old state; another
    /// cache on the same file moves over at its next update.
    @Test func machinesBehindTheRemovedHistoryRebuildFromTheCheckpoint() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.machinesRebuild(store: try await CacheFixture.makeStore(directory), directory: directory)
        }
    }

    /// The body of ``machinesBehindTheRemovedHistoryRebuildFromTheCheckpoint()``
    /// for any empty datastore; state files go to `directory`.
    static func machinesRebuild(store: any Datastore, directory: String) async throws {
        let log = ModelledLog(store: store)
        func write(_ operations: [LogOperation]) async throws -> UInt64 { try await log.write(operations) }
        for index in 0..<300 { _ = try await write([.set(key: bytes("k\(index % 120)"), value: bytes("a\(index)"))]) }
        _ = try await write([.set(key: bytes("doomed"), value: bytes("here"))])

        let middle = try CacheFixture.makeCache(directory, store, name: "middle")
        try await middle.update()
        let sameFile = try CacheFixture.makeCache(directory, store, name: "middle")
        let never = try CacheFixture.makeCache(directory, store, name: "never")
        for index in 0..<200 { _ = try await write([.set(key: bytes("k\(index % 150)"), value: bytes("b\(index)"))]) }
        let limit = try await write([.delete(key: bytes("doomed"))])
        let atLimit = try CacheFixture.makeCache(directory, store, name: "at-limit")
        try await atLimit.update()

        try await Self.publishCheckpoint(log.model, at: limit, in: store)
        try await store.removeRecords(through: limit)
        for index in 0..<50 { _ = try await write([.set(key: bytes("c\(index)"), value: bytes("c"))]) }
        let latest = try await store.latestUpdateID()

        let before = try middle.snapshot()
        for cache in [middle, never, atLimit] {
            try await cache.update()
            #expect(try cache.updateID() == latest)
            #expect(try cache.value(forKey: bytes("doomed")) == nil)
            try CacheFixture.expectContents(cache, equal: log.model)
        }
        // The old file stays readable, unchanged, for a reader pinned before.
        #expect(try before.value(forKey: bytes("doomed")) == bytes("here"))
        before.close()
        // Another cache on the old file reads it until its next update, then moves over.
        #expect(try sameFile.value(forKey: bytes("doomed")) == bytes("here"))
        try await sameFile.update()
        #expect(try sameFile.updateID() == latest)
        try CacheFixture.expectContents(sameFile, equal: log.model)
        // No temporary file is left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".rebuilding.") }
        #expect(leftovers.isEmpty)
    }
}
