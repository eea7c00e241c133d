import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// Caches that subscribe to key prefixes: after random workloads — updates,
/// rebuilds from a checkpoint and verification — a subscribed cache holds
/// exactly the model's keys under its prefixes; a file with other prefixes
/// is refused.
@Suite struct SharedCacheSubscriptionTests {
    /// The prefixes the tests subscribe to. `u` and `user/` collapse into `u`.
    static let prefixes = [bytes("user/"), bytes("b"), bytes("u"), [0x78, 0xFF]]
    /// Their canonical form, spelled out independently of the library.
    static let canonicalPrefixes = [bytes("b"), bytes("u"), [0x78, 0xFF]]
    /// Keys under the prefixes, beside them, and outside them; some are
    /// prefixes of others, and some share a first byte with a prefix.
    static let keySpace: [[UInt8]] = (0..<40).flatMap { index in
        ["user/\(index)", "b\(index)", "u\(index % 7)", "a\(index)", "c\(index)", "x\(index)", "ba\(index % 5)"].map(bytes)
    } + [bytes("b"), bytes("u"), [0x78, 0xFF], [0x78, 0xFE], [0x78, 0xFF, 0x00], [0x78, 0xFF, 0xFF], [0xFF], bytes("B1"), bytes("us")]

    /// A configuration that subscribes to `prefixes`.
    static func subscribing(_ prefixes: [[UInt8]], operationsPerTransaction: Int = 1 << 20) -> SharedCache.Configuration {
        var configuration = SharedCache.Configuration()
        configuration.stateFileOptions.subscribedPrefixes = prefixes
        configuration.maximumOperationsPerTransaction = operationsPerTransaction
        return configuration
    }

    /// The model's keys under `prefixes`.
    static func filtered(_ model: [[UInt8]: [UInt8]], _ prefixes: [[UInt8]] = prefixes) -> [[UInt8]: [UInt8]] {
        model.filter { entry in prefixes.contains { entry.key.starts(with: $0) } }
    }

    /// Appends `records` random records of 1…6 operations (sets and deletes,
    /// across and outside the prefixes) to `log`.
    static func writeRandomRecords(_ log: ModelledLog, _ records: Int, _ generator: inout SeededGenerator, tag: String) async throws {
        for record in 0..<records {
            let operations: [LogOperation] = (0..<Int.random(in: 1...6, using: &generator)).map { item in
                let key = keySpace.randomElement(using: &generator)!
                return Int.random(in: 0..<4, using: &generator) == 0
                    ? .delete(key: key) : .set(key: key, value: bytes("\(tag)-\(record)-\(item)"))
            }
            try await log.write(operations)
        }
    }

    /// Expects `cache` to hold exactly the model's keys under the prefixes,
    /// key by key, and its iteration and lookups to agree.
    static func expectSubscribedContents(
        _ cache: SharedCache, _ log: ModelledLog, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let expected = filtered(log.model)
        try CacheFixture.expectContents(cache, equal: expected, sourceLocation: sourceLocation)
        let sorted = expected.keys.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(try cache.keys() == sorted, sourceLocation: sourceLocation)
        for prefix in [bytes("user/"), bytes("b"), bytes("a"), bytes("x")] {
            #expect(try cache.keys(in: .prefix(prefix)) == sorted.filter { $0.starts(with: prefix) }, sourceLocation: sourceLocation)
        }
        for key in keySpace {
            #expect(try cache.value(forKey: key) == expected[key], sourceLocation: sourceLocation)
        }
        #expect(try SharedStateFile.open(at: cache.statePath).verify() == expected.count, sourceLocation: sourceLocation)
    }

    @Test(arguments: [(UInt64(1), 1 << 20), (2, 7), (3, 1)])
    func aSubscribedCacheHoldsExactlyTheKeysUnderItsPrefixesAfterRandomUpdates(seed: UInt64, operationsPerTransaction: Int) async throws {
        try await withTemporaryDirectory { directory in
            try await Self.randomUpdates(
                store: try await CacheFixture.makeStore(directory), directory: directory, seed: seed,
                operationsPerTransaction: operationsPerTransaction)
        }
    }

    /// The body of ``aSubscribedCacheHoldsExactlyTheKeysUnderItsPrefixesAfterRandomUpdates(seed:operationsPerTransaction:)``
    /// for any empty datastore: rounds of random records, each followed by
    /// an update of a subscribed cache (and sometimes of a full one), checked
    /// key by key against the model.
    static func randomUpdates(store: any Datastore, directory: String, seed: UInt64, operationsPerTransaction: Int) async throws {
        let log = ModelledLog(store: store)
        let configuration = Self.subscribing(Self.prefixes, operationsPerTransaction: operationsPerTransaction)
        let cache = try CacheFixture.makeCache(directory, log.store, configuration: configuration)
        #expect(try SharedStateFile.open(at: cache.statePath).subscribedPrefixes == Self.canonicalPrefixes)
        let everything = try CacheFixture.makeCache(directory, log.store, name: "everything")
        var generator = SeededGenerator(seed: seed)
        for round in 0..<12 {
            try await Self.writeRandomRecords(log, Int.random(in: 0...60, using: &generator), &generator, tag: "r\(round)")
            let latest = try await log.store.latestUpdateID()
            let summary = try await cache.update()
            // Skipped records still move the update id.
            #expect(summary.updateID == latest)
            #expect(try cache.updateID() == latest)
            try Self.expectSubscribedContents(cache, log)
            if round % 3 == 0 {
                try await everything.update()
                try CacheFixture.expectContents(everything, equal: log.model)
            }
        }
    }

    @Test func writesOfKeysOutsideThePrefixesGoToTheLogOnly() async throws {
        try await withTemporaryDirectory { directory in
            let log = ModelledLog(store: try await CacheFixture.makeStore(directory))
            let cache = try CacheFixture.makeCache(directory, log.store, configuration: Self.subscribing(Self.prefixes))
            let inside = try await cache.set(bytes("in"), forKey: bytes("user/1"))
            #expect(try cache.value(forKey: bytes("user/1")) == bytes("in"))
            let outside = try await cache.set(bytes("out"), forKey: bytes("a1"))
            #expect(outside > inside)
            #expect(try cache.updateID() >= outside)
            #expect(try cache.value(forKey: bytes("a1")) == nil)
            // The log holds it for every machine that keeps it.
            #expect(try await CacheFixture.replay(log.store)[bytes("a1")] == bytes("out"))
            let mixed = try await cache.set(contentsOf: [(bytes("b1"), bytes("1")), (bytes("c1"), bytes("2"))])
            #expect(try cache.updateID() >= mixed)
            #expect(try cache.keys() == [bytes("b1"), bytes("user/1")])
            // A log entirely outside the prefixes: the records pass, nothing is applied.
            let other = try CacheFixture.makeCache(directory, log.store, name: "other", configuration: Self.subscribing([bytes("zzz")]))
            let summary = try await other.update()
            #expect(summary.updateID == mixed && summary.recordsApplied == 3 && summary.operationsApplied == 0)
            #expect(try other.keys().isEmpty)
        }
    }

    @Test func aCacheRebuiltFromACheckpointKeepsItsPrefixes() async throws {
        try await withTemporaryDirectory { directory in
            let log = ModelledLog(store: try await CacheFixture.makeStore(directory))
            let configuration = Self.subscribing(Self.prefixes, operationsPerTransaction: 5)
            var generator = SeededGenerator(seed: 0xC4EC)
            try await Self.writeRandomRecords(log, 150, &generator, tag: "first")
            let behind = try CacheFixture.makeCache(directory, log.store, name: "behind", configuration: configuration)
            try await behind.update()
            try await Self.writeRandomRecords(log, 150, &generator, tag: "second")
            let limit = try await log.store.latestUpdateID()
            try await Self.writeRandomRecords(log, 40, &generator, tag: "third")
            _ = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: limit)
            #expect(try await log.store.firstRetainedUpdateID() == limit + 1)
            try await Self.writeRandomRecords(log, 40, &generator, tag: "fourth")

            let fresh = try CacheFixture.makeCache(directory, log.store, name: "fresh", configuration: configuration)
            for cache in [behind, fresh] {
                try await cache.update()
                #expect(try cache.updateID() == (try await log.store.latestUpdateID()))
                #expect(try SharedStateFile.open(at: cache.statePath).subscribedPrefixes == Self.canonicalPrefixes)
                try Self.expectSubscribedContents(cache, log)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".rebuilding.") }.isEmpty)
        }
    }

    @Test func aSubscribedCacheVerifiesEqualAndDifferencesAreFound() async throws {
        try await withTemporaryDirectory { directory in
            let log = ModelledLog(store: try await CacheFixture.makeStore(directory))
            var generator = SeededGenerator(seed: 0x7E21)
            try await Self.writeRandomRecords(log, 200, &generator, tag: "v")
            let cache = try CacheFixture.makeCache(directory, log.store, configuration: Self.subscribing(Self.prefixes))
            try await cache.update(through: 50)
            let outcome = try await StateVerifier(cache: cache, scratchDirectory: directory).verify()
            #expect(outcome.isEqual, "\(outcome.differences)")
            #expect(outcome.logKeyCount == Self.filtered(log.model).count && outcome.stateKeyCount == outcome.logKeyCount)
            try Self.expectSubscribedContents(cache, log)

            // After a rewrite, the replay starts from the checkpoint, filtered the same way.
            _ = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: 150)
            try await Self.writeRandomRecords(log, 20, &generator, tag: "w")
            #expect(try await StateVerifier(cache: cache, scratchDirectory: directory).verify().isEqual)

            let key = try #require(Self.filtered(log.model).keys.first)
            try SharedStateFile.open(at: cache.statePath).write { transaction in
                try transaction.setValue(bytes("changed"), forKey: key)
            }
            let differs = try await StateVerifier(cache: cache, scratchDirectory: directory).verify()
            #expect(differs.differences == [.valueDiffers(key: key, stateValue: bytes("changed"), logValue: log.model[key]!)])
        }
    }

    @Test func aFileWithOtherPrefixesIsRefusedAndLeftAsItIs() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store, configuration: Self.subscribing([bytes("a"), bytes("b")]))
            _ = try await cache.set(bytes("1"), forKey: bytes("a1"))
            let path = cache.statePath
            let identity = try SharedStateFile.open(at: path).fileIdentifier
            for (prefixes, replacing) in [([bytes("a")], false), ([], false), ([bytes("a"), bytes("b"), bytes("c")], true), ([], true)] {
                var configuration = Self.subscribing(prefixes)
                configuration.replacesUnusableStateFile = replacing
                #expect(throws: CacheError.subscriptionMismatch(
                    path: path, stateFilePrefixes: [bytes("a"), bytes("b")], configuredPrefixes: prefixes)
                ) {
                    try SharedCache(statePath: path, datastore: store, configuration: configuration)
                }
            }
            // Not replaced, not retired, its state intact.
            let file = try SharedStateFile.open(at: path)
            #expect(file.fileIdentifier == identity && !file.isRetired)
            #expect(try cache.entries().map(\.key) == [bytes("a1")])
            // The same set of keys, spelled differently, is the same subscription.
            let same = try SharedCache(statePath: path, datastore: store, configuration: Self.subscribing([bytes("b"), bytes("ab"), bytes("a")]))
            #expect(try same.value(forKey: bytes("a1")) == bytes("1"))
            // A history rewrite needs every key.
            var subscribed = SharedCache.Configuration()
            subscribed.stateFileOptions.subscribedPrefixes = [bytes("a")]
            await #expect(throws: CacheError.invalidConfiguration(
                reason: "a history rewrite checkpoints every key of the log; its state file options may not subscribe to prefixes")
            ) {
                try await HistoryRewriter(datastore: store, scratchDirectory: directory, configuration: subscribed).rewrite(through: 1)
            }
        }
    }
}
