import Foundation
import Testing
import WhyCache

/// ``SharedCache/rewriteStateFile()``: the cache that rewrites moves to the
/// new file at once, another cache of the file at its next update, and
/// writes made while the rewrite runs are neither lost nor hidden.
@Suite struct SharedCacheRewriteTests {
    @Test func bothCachesOfTheFileEndOnTheRewrittenStateWithEveryWrite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = ModelledLog(store: store)
            var generator = SystemRandomNumberGenerator()
            for index in (0..<3000).shuffled(using: &generator) {
                _ = try await log.write([.set(key: bytes("key/\(index)"), value: bytes("v\(index)"))])
            }
            let rewriting = try CacheFixture.makeCache(directory, store)
            let other = try CacheFixture.makeCache(directory, store)
            try await rewriting.update()
            let oldIdentifier = try rewriting.withSnapshot { $0.file.fileIdentifier }

            // Writes through both caches while the file is rewritten.
            async let writes: Void = {
                for index in 0..<200 {
                    let cache = index % 2 == 0 ? rewriting : other
                    let key = bytes("key/\(index * 7 % 3000)")
                    let value = bytes("during-\(index)")
                    _ = try await cache.set(value, forKey: key)
                    // Read-your-writes, in the cache that wrote.
                    #expect(try cache.value(forKey: key) == value, "write \(index)")
                }
            }()
            let summary = try await rewriting.rewriteStateFile()
            try await writes
            for index in 0..<200 { log.model[bytes("key/\(index * 7 % 3000)")] = bytes("during-\(index)") }

            #expect(summary.isInstalled && summary.keyCount == 3000)
            #expect(try rewriting.withSnapshot { $0.file.fileIdentifier } != oldIdentifier, "the rewriting cache moved at once")
            try await rewriting.update()
            try await other.update()
            #expect(try other.withSnapshot { $0.file.fileIdentifier } != oldIdentifier, "the other cache moved at its update")
            try CacheFixture.expectContents(rewriting, equal: log.model)
            try CacheFixture.expectContents(other, equal: log.model)
            #expect(try await CacheFixture.replay(store) == log.model)
        }
    }

    /// An update waits for the writer lock of its file while another
    /// process installs a new file at the path and then lets the lock go:
    /// the update applies its records to the new file (the one the path
    /// names and the cache's reads move to), not to the retired one.
    @Test func anUpdateWhoseLockWaitEndsWithTheFileReplacedAppliesToTheNewFile() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = ModelledLog(store: store)
            for index in 0..<10 { try await log.write([.set(key: bytes("k\(index)"), value: bytes("a"))]) }
            let cache = try CacheFixture.makeCache(directory, store)
            try await cache.update()
            for index in 5..<15 { try await log.write([.set(key: bytes("k\(index)"), value: bytes("b"))]) }

            // The state at 10 in a second file, to be installed at the path.
            let path = directory + "/state"
            let replacement = try SharedStateFile.open(at: directory + "/replacement")
            let atTen = try SharedStateFile.open(at: path).snapshot().entries()
            try replacement.write { transaction in
                for (key, value) in atTen { try transaction.setValue(value, forKey: key) }
                try transaction.setUpdateID(10)
                try transaction.markInitialized()
            }

            let old = try SharedStateFile.open(at: path)
            let held = try old.beginWrite()
            let update = Task { try await cache.update() }
            // Let the update reach its wait for the lock (if it is later,
            // it opens the new file at once, which ends the same way).
            try await Task.sleep(for: .milliseconds(300))
            try SharedStateFile.install(directory + "/replacement", at: path)
            held.abandon()
            try await update.value

            #expect(try old.updateID() == 10, "the update applied to the retired file")
            let current = try SharedStateFile.open(at: path)
            #expect(try current.updateID() == 20)
            #expect(current.fileIdentifier == replacement.fileIdentifier)
            try CacheFixture.expectContents(cache, equal: log.model)
        }
    }

    @Test func aClosedCacheRefuses() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            try await cache.update()
            cache.close()
            await #expect(throws: CacheError.closed(path: directory + "/state")) { try await cache.rewriteStateFile() }
        }
    }
}
