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
