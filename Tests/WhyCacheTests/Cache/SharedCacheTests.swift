import Foundation
import Testing
import WhyCache

/// Single-process behaviour of the cache API: reads, writes, updates, the
/// codec, the state file's life cycle and every kind of bad input.
@Suite struct SharedCacheTests {
    /// A cache over a fresh file datastore in a temporary directory.
    private func withCache<R>(
        configuration: SharedCache.Configuration = .init(),
        _ body: (SharedCache, FileDatastore, String) async throws -> R
    ) async throws -> R {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store, configuration: configuration)
            return try await body(cache, store, directory)
        }
    }

    @Test func missingKeyReadsAsNil() async throws {
        try await withCache { cache, _, _ throws in
            #expect(try cache.value(forKey: bytes("missing")) == nil)
            #expect(try cache.contains(bytes("missing")) == false)
            #expect(try cache.withValue(forKey: bytes("missing")) { $0 == nil })
            #expect(try cache.value(decoding: Int.self, forKey: bytes("missing")) == nil)
        }
    }

    /// `withValue` throws `CacheError` alone when its closure does not throw
    /// (the `do throws(CacheError)` block compiles only then), and passes a
    /// throwing closure's error through unchanged.
    @Test func withValueIsTypedUnlessItsClosureThrows() async throws {
        try await withCache { cache, _, _ in
            try await cache.set(bytes("1"), forKey: bytes("k"))
            do throws(CacheError) {
                #expect(try cache.withValue(forKey: bytes("k")) { $0?.count } == 1)
                _ = try cache.withValue(forKey: [UInt8]()) { $0 }
                Issue.record("an empty key was read")
            } catch {
                #expect(error == .invalidKey(length: 0))
            }
            struct Stop: Error, Equatable {}
            #expect(throws: Stop()) { try cache.withValue(forKey: bytes("k")) { _ in throw Stop() } }
        }
    }

    @Test func setThenDeleteIsVisibleWhenTheWriteReturns() async throws {
        try await withCache { cache, store, _ in
            let first = try await cache.set(bytes("red"), forKey: bytes("color"))
            #expect(first == 1)
            #expect(try cache.value(forKey: bytes("color")) == bytes("red"))
            #expect(try cache.updateID() == first)

            let second = try await cache.set(bytes("blue"), forKey: bytes("color"))
            #expect(second == first + 1)
            #expect(try cache.value(forKey: bytes("color")) == bytes("blue"))
            #expect(try cache.withValue(forKey: bytes("color")) { Array($0!) } == bytes("blue"))

            let third = try await cache.delete(bytes("color"))
            #expect(third == second + 1)
            #expect(try cache.value(forKey: bytes("color")) == nil)
            #expect(try cache.contains(bytes("color")) == false)
            #expect(try await store.latestUpdateID() == third)

            // Deleting an absent key is a logged no-op, not an error.
            let fourth = try await cache.delete(bytes("never-set"))
            #expect(fourth == third + 1)
        }
    }

    struct Profile: Codable, Equatable {
        var name: String
        var scores: [Double]
        var tags: [String: Bool]
        var nickname: String?
    }

    @Test func codableValuesOfSeveralTypesRoundTrip() async throws {
        try await withCache { cache, _, _ in
            let profile = Profile(name: "Ada", scores: [1.5, -2, 1e300], tags: ["admin": true], nickname: nil)
            try await cache.set(encoding: 42, forKey: bytes("int"))
            try await cache.set(encoding: "naïve ☃", forKey: bytes("string"))
            try await cache.set(encoding: [3, 1, 2], forKey: bytes("array"))
            try await cache.set(encoding: profile, forKey: bytes("profile"))
            try await cache.set(encoding: true, forKey: bytes("bool"))
            #expect(try cache.value(decoding: Int.self, forKey: bytes("int")) == 42)
            #expect(try cache.value(decoding: String.self, forKey: bytes("string")) == "naïve ☃")
            #expect(try cache.value(decoding: [Int].self, forKey: bytes("array")) == [3, 1, 2])
            #expect(try cache.value(decoding: Profile.self, forKey: bytes("profile")) == profile)
            #expect(try cache.value(decoding: Bool.self, forKey: bytes("bool")) == true)

            // A value that does not decode as the asked type is a typed error.
            #expect(throws: CacheError.self) { try cache.value(decoding: Int.self, forKey: bytes("string")) }
            do {
                _ = try cache.value(decoding: Profile.self, forKey: bytes("int"))
                Issue.record("decoding succeeded")
            } catch let error as CacheError {
                guard case .codecFailed(let key, _) = error else { Issue.record("wrong error \(error)"); return }
                #expect(key == "\"int\"")
            }
        }
    }

    /// A codec that stores values as their `description`, to show the codec is pluggable.
    struct DescriptionCodec: CacheValueCodec {
        func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] { Array("\(value)".utf8) }
        func decode<Value: Decodable>(_ type: Value.Type, from bytes: UnsafeRawBufferPointer) throws -> Value {
            guard type == Int.self, let number = Int(String(decoding: bytes, as: UTF8.self)) else {
                throw CocoaError(.coderReadCorrupt)
            }
            return number as! Value
        }
    }

    @Test func theCodecIsPluggable() async throws {
        var configuration = SharedCache.Configuration()
        configuration.codec = DescriptionCodec()
        try await withCache(configuration: configuration) { cache, _, _ in
            try await cache.set(encoding: 1234, forKey: bytes("n"))
            #expect(try cache.value(forKey: bytes("n")) == bytes("1234"))
            #expect(try cache.value(decoding: Int.self, forKey: bytes("n")) == 1234)
        }
    }

    /// `withSnapshot` reads at one point in time and closes the snapshot
    /// after its closure, also when the closure throws.
    @Test func aScopedSnapshotIsClosedAfterItsClosure() async throws {
        try await withCache { cache, _, _ in
            try await cache.set(bytes("1"), forKey: bytes("flag/a"))
            var kept: StateSnapshot?
            let entries = try cache.withSnapshot { snapshot in
                kept = snapshot
                return try snapshot.entries(in: .prefix(bytes("flag/")))
            }
            #expect(entries.map(\.key) == [bytes("flag/a")])
            let escaped = try #require(kept)
            #expect(throws: StateFileError.closed(path: cache.statePath)) { try escaped.value(forKey: bytes("flag/a")) }

            struct Stop: Error {}
            #expect(throws: Stop.self) {
                try cache.withSnapshot { snapshot in
                    kept = snapshot
                    throw Stop()
                }
            }
            #expect(throws: StateFileError.closed(path: cache.statePath)) { try kept?.value(forKey: bytes("flag/a")) }
        }
    }

    /// Many `Codable` values in one call make one record; every value is
    /// encoded first, so one that does not encode fails the call and
    /// nothing is written.
    @Test func manyCodableValuesAreSetInOneCall() async throws {
        try await withCache { cache, store, _ in
            let profiles = [
                (key: bytes("profile/ada"), value: Profile(name: "Ada", scores: [1], tags: [:], nickname: nil)),
                (key: bytes("profile/bob"), value: Profile(name: "Bob", scores: [], tags: ["ops": true], nickname: "b")),
            ]
            let id = try await cache.set(encodingContentsOf: profiles)
            #expect(try await store.latestUpdateID() == id)
            for profile in profiles {
                #expect(try cache.value(decoding: Profile.self, forKey: profile.key) == profile.value)
            }
            // JSON has no NaN: the second value does not encode, and the first is not written either.
            let numbers: [(key: [UInt8], value: Double)] = [(bytes("number/one"), 1), (bytes("number/nan"), .nan)]
            do throws(CacheError) {
                try await cache.set(encodingContentsOf: numbers)
                Issue.record("a NaN encoded as JSON")
            } catch {
                guard case .codecFailed(let key, _) = error else { Issue.record("wrong error \(error)"); return }
                #expect(key == "\"number/nan\"")
            }
            #expect(try await store.latestUpdateID() == id)
            #expect(try cache.value(forKey: bytes("number/one")) == nil)
        }
    }

    /// A change's value decodes with the cache's codec; a deletion is nil.
    @Test func aChangeDecodesItsValue() throws {
        let profile = Profile(name: "Ada", scores: [2.5], tags: ["admin": true], nickname: nil)
        let set = CacheChange(updateID: 7, key: bytes("profile/ada"), value: try JSONValueCodec().encode(profile))
        #expect(try set.value(decoding: Profile.self) == profile)
        #expect(try CacheChange(updateID: 8, key: bytes("profile/ada"), value: nil).value(decoding: Profile.self) == nil)
        #expect(try CacheChange(updateID: 9, key: bytes("n"), value: bytes("1234")).value(decoding: Int.self, with: DescriptionCodec()) == 1234)
        #expect(throws: CacheError.self) { try set.value(decoding: Int.self) }
    }

    @Test func twoCachesOnOneStateFileSeeEachOthersWritesWithoutUpdating() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let first = try CacheFixture.makeCache(directory, store)
            let second = try CacheFixture.makeCache(directory, store)
            try await first.set(bytes("1"), forKey: bytes("from-first"))
            #expect(try second.value(forKey: bytes("from-first")) == bytes("1"))
            try await second.set(bytes("2"), forKey: bytes("from-second"))
            #expect(try first.value(forKey: bytes("from-second")) == bytes("2"))
            #expect(try first.updateID() == 2 && second.updateID() == 2)
        }
    }

    @Test func aCacheOnAnotherStateFileSeesWritesAfterUpdating() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            let reader = try CacheFixture.makeCache(directory, store, name: "machine-b")
            try await writer.set(bytes("v"), forKey: bytes("k"))
            #expect(try reader.value(forKey: bytes("k")) == nil)
            let summary = try await reader.update()
            #expect(summary == UpdateSummary(updateID: 1, recordsApplied: 1, operationsApplied: 1, transactionsCommitted: 1))
            #expect(try reader.value(forKey: bytes("k")) == bytes("v"))
            // Nothing new: no work, no transaction.
            #expect(try await reader.update() == UpdateSummary(updateID: 1))
        }
    }

    @Test func updateThroughStopsAtTheGivenID() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            for index in 1...10 { try await writer.set(bytes("\(index)"), forKey: bytes("k")) }
            let reader = try CacheFixture.makeCache(directory, store, name: "machine-b")
            #expect(try await reader.update(through: 4).updateID == 4)
            #expect(try reader.value(forKey: bytes("k")) == bytes("4"))
            #expect(try await reader.update(through: 2).recordsApplied == 0)  // never backwards
            #expect(try reader.updateID() == 4)
            #expect(try await reader.update().updateID == 10)
            #expect(try reader.value(forKey: bytes("k")) == bytes("10"))
        }
    }

    @Test func aStateFileIsValidOnlyOnceInitializedFromTheLog() async throws {
        try await withCache { cache, _, _ in
            #expect(cache.isValid() == false)
            try await cache.update()  // an empty log still initializes the state
            #expect(cache.isValid())
            #expect(try cache.updateID() == 0)
            #expect(try cache.statistics().isInitialized)
        }
    }

    @Test func removingTheStateFileRebuildsItFromTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let other = try CacheFixture.makeCache(directory, store)  // another process, in effect
            for index in 0..<50 { try await cache.set(bytes("v\(index)"), forKey: bytes("k\(index % 20)")) }
            try await cache.delete(bytes("k3"))
            let expected = try await CacheFixture.replay(store)
            let snapshot = try other.snapshot()

            try cache.removeStateFile()
            #expect(FileManager.default.fileExists(atPath: directory + "/state"))  // a new, empty file
            #expect(cache.isValid() == false)
            #expect(try cache.value(forKey: bytes("k1")) == nil)
            // The other user keeps reading the old contents until its next update.
            #expect(try other.value(forKey: bytes("k1")) == expected[bytes("k1")])
            #expect(try snapshot.value(forKey: bytes("k1")) == expected[bytes("k1")])
            snapshot.close()

            let summary = try await cache.update()
            #expect(summary.recordsApplied == 51)
            #expect(cache.isValid())
            try CacheFixture.expectContents(cache, equal: expected)
            // The other user moves to the new file and finds the work done.
            #expect(try await other.update().recordsApplied == 0)
            try CacheFixture.expectContents(other, equal: expected)
            try await other.set(bytes("after"), forKey: bytes("k1"))
            #expect(try cache.value(forKey: bytes("k1")) == bytes("after"))
        }
    }

    @Test func iterationCoversEverythingAPrefixOrARangeInOrder() async throws {
        try await withCache { cache, _, _ in
            let keys = ["b", "a", "ab", "abc", "b/1", "b/2", "c", "ba"]
            try await cache.set(contentsOf: keys.map { (key: bytes($0), value: bytes($0.uppercased())) })
            #expect(try cache.keys().map { String(decoding: $0, as: UTF8.self) } == keys.sorted())
            #expect(try cache.keys(in: .prefix(bytes("b"))).map { String(decoding: $0, as: UTF8.self) } == ["b", "b/1", "b/2", "ba"])
            #expect(
                try cache.keys(in: KeyRange(from: bytes("ab"), upTo: bytes("b/2"))).map { String(decoding: $0, as: UTF8.self) }
                    == ["ab", "abc", "b", "b/1"])
            #expect(try cache.values(in: .prefix(bytes("b/"))) == [bytes("B/1"), bytes("B/2")])
            let items = try cache.entries(in: .prefix(bytes("ab")))
            #expect(items.map(\.value) == [bytes("AB"), bytes("ABC")])
            let snapshot = try cache.snapshot()
            #expect(try snapshot.values(in: .prefix(bytes("c"))) == [bytes("C")])
        }
    }

    @Test func aSnapshotIteratesOnePointInTimeWhileWritesContinue() async throws {
        try await withCache { cache, _, _ in
            try await cache.set(contentsOf: (0..<100).map { (key: bytes("k\($0)"), value: bytes("old")) })
            let snapshot = try cache.snapshot()
            defer { snapshot.close() }
            var cursor = snapshot.makeCursor()
            var seen = 0
            while let entry = try cursor.next() {
                #expect(entry.value == bytes("old"))
                if seen % 10 == 0 {
                    // Writes land (and are visible to new reads) mid-iteration.
                    try await cache.set(bytes("new"), forKey: bytes("k\(99 - seen)"))
                    try await cache.delete(bytes("k\(seen + 1)"))
                    try await cache.set(bytes("new"), forKey: bytes("k\(seen)x"))
                    #expect(try cache.value(forKey: bytes("k\(99 - seen)")) == bytes("new"))
                }
                seen += 1
            }
            #expect(seen == 100)
            #expect(snapshot.updateID == 1)
            #expect(try cache.updateID() == 31)
        }
    }

    @Test func multiKeyWritesAreSplitIntoRecordsOfTheConfiguredSize() async throws {
        var configuration = SharedCache.Configuration()
        configuration.maximumRecordSize = 4_096
        try await withCache(configuration: configuration) { cache, store, _ in
            let items = (0..<1_000).map { (key: bytes("key-\($0)"), value: Array(repeating: UInt8($0 % 251), count: 50)) }
            let last = try await cache.set(contentsOf: items)
            #expect(last > 10)
            #expect(try cache.updateID() == last)
            var records = 0
            for try await entry in store.records(after: 0) {
                #expect(entry.payload.count <= 4_096)
                records += 1
            }
            #expect(UInt64(records) == last)
            try CacheFixture.expectContents(cache, equal: Dictionary(uniqueKeysWithValues: items.map { ($0.key, $0.value) }))
            let deleted = try await cache.delete(contentsOf: items.prefix(900).map(\.key))
            #expect(deleted > last + 1)
            #expect(try cache.statistics().keyCount == 100)
        }
    }

    @Test func aValueThatCannotFitInARecordWritesNothing() async throws {
        var configuration = SharedCache.Configuration()
        configuration.maximumRecordSize = 4_096
        try await withCache(configuration: configuration) { cache, store, _ in
            try await cache.set(bytes("kept"), forKey: bytes("before"))
            let big = Array(repeating: UInt8(7), count: 4_096)
            let needed = try LogRecord([.set(key: bytes("big"), value: big)]).encodedSize()
            await #expect(throws: CacheError.recordTooLarge(size: needed, maximum: 4_096)) {
                try await cache.set(contentsOf: [(key: bytes("small"), value: bytes("x")), (key: bytes("big"), value: big)])
            }
            #expect(try await store.latestUpdateID() == 1)
            #expect(try cache.value(forKey: bytes("small")) == nil)
        }
    }

    @Test func badKeysAndValuesAreTypedErrorsAndWriteNothing() async throws {
        try await withCache { cache, store, _ in
            let longKey = Array(repeating: UInt8(ascii: "k"), count: WhyCacheLimits.maximumKeyLength + 1)
            let longValue = [UInt8](repeating: 0, count: WhyCacheLimits.maximumValueLength + 1)
            await #expect(throws: CacheError.invalidKey(length: 0)) { try await cache.set(bytes("v"), forKey: []) }
            await #expect(throws: CacheError.invalidKey(length: longKey.count)) { try await cache.set(bytes("v"), forKey: longKey) }
            await #expect(throws: CacheError.invalidKey(length: 0)) { try await cache.delete([UInt8]()) }
            await #expect(throws: CacheError.valueTooLong(length: longValue.count)) {
                try await cache.set(longValue, forKey: bytes("k"))
            }
            await #expect(throws: CacheError.invalidKey(length: 0)) {
                try await cache.set(contentsOf: [(key: bytes("fine"), value: bytes("v")), (key: [], value: bytes("v"))])
            }
            #expect(try await store.latestUpdateID() == 0)
            #expect(try cache.statistics().keyCount == 0)
            #expect(throws: CacheError.invalidKey(length: 0)) { try cache.value(forKey: []) }
            #expect(throws: CacheError.invalidKey(length: longKey.count)) { try cache.contains(longKey) }
            // A key at the limit is fine.
            let maximal = Array(longKey.dropLast())
            try await cache.set(bytes("v"), forKey: maximal)
            #expect(try cache.value(forKey: maximal) == bytes("v"))
        }
    }

    @Test func anInvalidConfigurationIsRejected() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            var configuration = SharedCache.Configuration()
            configuration.maximumRecordSize = LogRecordSplitter.allowedMaximumRecordSizes.lowerBound - 1
            #expect(throws: CacheError.self) { try CacheFixture.makeCache(directory, store, configuration: configuration) }
            configuration = SharedCache.Configuration()
            configuration.maximumOperationsPerTransaction = 0
            #expect(throws: CacheError.self) { try CacheFixture.makeCache(directory, store, configuration: configuration) }
            configuration = SharedCache.Configuration()
            configuration.stateFileOptions.readerSlotCount = 0
            do {
                _ = try CacheFixture.makeCache(directory, store, configuration: configuration)
                Issue.record("zero reader slots were accepted")
            } catch let error as CacheError {
                guard case .stateFile(.invalidOptions) = error else { Issue.record("wrong error \(error)"); return }
            }
            #expect(!FileManager.default.fileExists(atPath: directory + "/state"))
        }
    }

    @Test func aCorruptRecordStopsTheUpdateThereAndIsNeverSkipped() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            try await writer.set(bytes("1"), forKey: bytes("a"))
            try await writer.set(bytes("2"), forKey: bytes("b"))
            var damaged = try LogRecord([.set(key: bytes("c"), value: bytes("3"))]).encoded()
            damaged[damaged.count - 1] ^= 0xFF  // the checksum no longer matches
            let bad = try await store.append(damaged)
            #expect(bad == 3)
            _ = try await store.append(try LogRecord([.set(key: bytes("d"), value: bytes("4"))]).encoded())

            let reader = try CacheFixture.makeCache(directory, store, name: "machine-b")
            for _ in 0..<2 {
                do {
                    try await reader.update()
                    Issue.record("the update skipped a corrupt record")
                } catch let error as CacheError {
                    guard case .corruptRecord(let updateID, .checksumMismatch) = error else {
                        Issue.record("wrong error \(error)")
                        return
                    }
                    #expect(updateID == 3)
                }
                // Everything before the bad record is applied and serving.
                #expect(try reader.updateID() == 2)
                #expect(try reader.value(forKey: bytes("b")) == bytes("2"))
                #expect(try reader.value(forKey: bytes("d")) == nil)
            }
        }
    }

    @Test func aTruncatedSegmentEndsTheLogBeforeTheTornRecord() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            for index in 1...3 { try await writer.set(Array(repeating: UInt8(index), count: 300), forKey: bytes("k\(index)")) }
            let segment = try FileDatastoreFixture.segmentPaths(directory + "/log").last!
            try FileDatastoreFixture.truncate(segment, to: try FileDatastoreFixture.size(segment) - 100)

            // A fresh store object and machine: the torn third record does not exist for them.
            let reopened = try await FileDatastore.open(directory: directory + "/log")
            let reader = try CacheFixture.makeCache(directory, reopened, name: "machine-b")
            #expect(try await reader.update().updateID == 2)
            #expect(try reader.value(forKey: bytes("k2")) == Array(repeating: 2, count: 300))
            #expect(try reader.value(forKey: bytes("k3")) == nil)
        }
    }

    /// The log changed under a machine: the record the machine applied last
    /// now has other contents (here the log was cut back and written on, as
    /// a log restored from an older copy is). The machine's next update
    /// sees the difference through the checksum its state keeps, and
    /// rebuilds from the log instead of applying what follows on top of a
    /// record that no longer exists.
    @Test func aStateWhoseLastRecordChangedInTheLogIsRebuilt() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let machine = try CacheFixture.makeCache(directory, store, name: "machine-a")
            for index in 1...3 { try await machine.set(Array(repeating: UInt8(index), count: 300), forKey: bytes("k\(index)")) }
            #expect(try machine.updateID() == 3)
            let segment = try FileDatastoreFixture.segmentPaths(directory + "/log").last!
            try FileDatastoreFixture.truncate(segment, to: try FileDatastoreFixture.size(segment) - 100)

            let changed = try await FileDatastore.open(directory: directory + "/log")
            let writer = try CacheFixture.makeCache(directory, changed, name: "writer")
            #expect(try await writer.set(bytes("other"), forKey: bytes("k3")) == 3)
            #expect(try await writer.set(bytes("four"), forKey: bytes("k4")) == 4)

            // The machine, in a new process (a fresh view of the log).
            let later = try await FileDatastore.open(directory: directory + "/log")
            let restarted = try SharedCache(statePath: directory + "/machine-a", datastore: later)
            #expect(try await restarted.update().updateID == 4)
            #expect(try restarted.value(forKey: bytes("k3")) == bytes("other"))
            #expect(try restarted.value(forKey: bytes("k4")) == bytes("four"))
            try CacheFixture.expectContents(restarted, equal: try await CacheFixture.replay(later))
        }
    }

    @Test func aStateBuiltFromAnotherLogIsReported() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            for index in 0..<3 { try await cache.set(bytes("\(index)"), forKey: bytes("k")) }
            let otherLog = try FileDatastore(directory: directory + "/other-log")
            try await otherLog.createIfMissing()
            let confused = try CacheFixture.makeCache(directory, otherLog)
            await #expect(throws: CacheError.stateAheadOfLog(localUpdateID: 3, latestUpdateID: 0)) { try await confused.update() }
            #expect(try confused.value(forKey: bytes("k")) == bytes("2"))  // still serving
        }
    }

    /// A datastore that returns fewer ids than records it appended breaks
    /// the protocol's contract: the write fails with `contractViolated`
    /// (not as the caller's bad request), and the cache applies nothing on
    /// the strength of the ids it got; its next update finds the record.
    @Test func aDatastoreThatReturnsTooFewIdsFailsTheWriteAsAContractViolation() async throws {
        try await withTemporaryDirectory { directory in
            let controlled = ControlledDatastore(wrapping: try await CacheFixture.makeStore(directory))
            let cache = try CacheFixture.makeCache(directory, controlled)
            controlled.dropAnIDOfNextAppend()
            do throws(CacheError) {
                _ = try await cache.set(bytes("v"), forKey: bytes("k"))
                Issue.record("the write succeeded")
            } catch {
                guard case .datastore(.contractViolated(let reason)) = error else {
                    Issue.record("expected contractViolated, got \(error)")
                    return
                }
                #expect(reason.contains("returned 0 ids for 1 records"))
            }
            #expect(try cache.updateID() == 0)
            #expect(try await cache.update().updateID == 1)
            #expect(try cache.value(forKey: bytes("k")) == bytes("v"))
            controlled.dropAnIDOfNextAppend()
            await #expect(throws: DatastoreError.contractViolated(reason: "the datastore assigned 0 ids to one record")) {
                try await controlled.append(try LogRecord([.set(key: bytes("k"), value: bytes("w"))]).encoded())
            }
        }
    }

    @Test func aClosedCacheThrowsClosed() async throws {
        try await withCache { cache, store, directory in
            try await cache.set(bytes("v"), forKey: bytes("k"))
            cache.close()
            let path = directory + "/state"
            #expect(throws: CacheError.closed(path: path)) { try cache.value(forKey: bytes("k")) }
            #expect(throws: CacheError.closed(path: path)) { try cache.snapshot() }
            await #expect(throws: CacheError.closed(path: path)) { try await cache.set(bytes("v"), forKey: bytes("k")) }
            await #expect(throws: CacheError.closed(path: path)) { try await cache.update() }
            #expect(throws: CacheError.closed(path: path)) { try cache.removeStateFile() }
            #expect(try await store.latestUpdateID() == 1)
            #expect(FileManager.default.fileExists(atPath: path))  // other processes keep using it
        }
    }

    @Test func concurrentUpdatesInOneProcessApplyEachRecordOnce() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            for index in 0..<200 { try await writer.set(bytes("\(index)"), forKey: bytes("k\(index % 37)")) }
            let reader = try CacheFixture.makeCache(directory, store, name: "machine-b")
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<32 { group.addTask { try await reader.update().recordsApplied } }
                return try await group.reduce(0, +)
            }
            #expect(applied == 200)
            try CacheFixture.expectContents(reader, equal: try await CacheFixture.replay(store))
        }
    }

    /// With coalescing off every set is a record of its own; with it on,
    /// sets share records (WriteCoalescingTests checks them in depth).
    @Test(arguments: [false, true]) func concurrentWritersInOneProcessAllReadTheirWrites(coalescing: Bool) async throws {
        var configuration = SharedCache.Configuration()
        configuration.coalescesWrites = coalescing
        try await withCache(configuration: configuration) { cache, store, _ in
            let ids = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for task in 0..<16 {
                    group.addTask {
                        var last: UInt64 = 0
                        for index in 0..<20 {
                            let id = try await cache.set(bytes("\(task)-\(index)"), forKey: bytes("task-\(task)"))
                            #expect(id > last)
                            #expect(try cache.updateID() >= id)
                            #expect(try cache.value(forKey: bytes("task-\(task)")) == bytes("\(task)-\(index)"))
                            last = id
                        }
                        return last
                    }
                }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            if coalescing {
                #expect(try await ids.max() == store.latestUpdateID())
                #expect(try await store.latestUpdateID() <= 320)
            } else {
                #expect(ids.max() == 320)
            }
            try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(store))
        }
    }

    @Test func longBacklogsAreAppliedInSeveralTransactions() async throws {
        var configuration = SharedCache.Configuration()
        configuration.maximumOperationsPerTransaction = 64
        configuration.readPageLimits = DatastorePageLimits(maximumCount: 25, maximumBytes: 1 << 20)
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let writer = try CacheFixture.makeCache(directory, store, name: "machine-a")
            for batch in 0..<50 {
                try await writer.set(contentsOf: (0..<10).map { (key: bytes("k\(batch * 7 + $0)"), value: bytes("\(batch)")) })
            }
            let reader = try CacheFixture.makeCache(directory, store, name: "machine-b", configuration: configuration)
            let summary = try await reader.update()
            #expect(summary.recordsApplied == 50)
            #expect(summary.operationsApplied == 500)
            #expect(summary.transactionsCommitted == 8)  // 7 full transactions of 70 operations, then the rest
            try CacheFixture.expectContents(reader, equal: try await CacheFixture.replay(store))
        }
    }

    /// Writes a key through a cache, closes it and changes its state file
    /// with `damage`; then checks that opening a cache on it throws (and
    /// `refusal` accepts the error) and leaves the file byte for byte, and
    /// that a cache allowed to replace unusable files rebuilds the key from
    /// the log. Returns the state file's path.
    private func expectRefusedUnlessReplaced(
        _ directory: String, damage: (String) throws -> Void, refusal: (any Error) -> Bool
    ) async throws -> String {
        let store = try await CacheFixture.makeStore(directory)
        let cache = try CacheFixture.makeCache(directory, store)
        try await cache.set(bytes("v"), forKey: bytes("k"))
        cache.close()
        let path = directory + "/state"
        try damage(path)
        let damaged = try fileContents(path)
        let error = #expect(throws: (any Error).self) { try CacheFixture.makeCache(directory, store) }
        #expect(error.map(refusal) == true, "\(String(describing: error))")
        #expect(try fileContents(path) == damaged)  // left as it was

        var configuration = SharedCache.Configuration()
        configuration.replacesUnusableStateFile = true
        let rebuilt = try CacheFixture.makeCache(directory, store, configuration: configuration)
        #expect(rebuilt.isValid() == false)
        try await rebuilt.update()
        #expect(try rebuilt.value(forKey: bytes("k")) == bytes("v"))
        return path
    }

    @Test func aDamagedStateFileIsReportedAndKeptUnlessReplacementIsAllowed() async throws {
        try await withTemporaryDirectory { directory in
            _ = try await expectRefusedUnlessReplaced(directory, damage: { path in
                #expect(try FileDatastoreFixture.size(path) > 5_000)
                try FileDatastoreFixture.truncate(path, to: 5_000)
            }, refusal: { $0 is CacheError })

            // A file that is not a state file is never replaced.
            var configuration = SharedCache.Configuration()
            configuration.replacesUnusableStateFile = true
            let store = try await CacheFixture.makeStore(directory)
            let foreign = directory + "/foreign"
            try Data(repeating: 0x41, count: 10_000).write(to: URL(fileURLWithPath: foreign))
            #expect(throws: CacheError.stateFile(.notAStateFile(path: foreign))) {
                try CacheFixture.makeCache(directory, store, name: "foreign", configuration: configuration)
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: foreign)) == Data(repeating: 0x41, count: 10_000))
        }
    }

    /// A state file of an earlier format version (1 or 2, with the fixed
    /// 6-byte leaf header) is refused and left intact, or replaced and
    /// rebuilt from the log when the configuration allows it: how a cache
    /// moves across a format change.
    @Test func aStateFileOfAnEarlierFormatIsRefusedOrRebuilt() async throws {
        try await withTemporaryDirectory { directory in
            let path = try await expectRefusedUnlessReplaced(directory, damage: { path in
                // Version 1 with a matching checksum, as an earlier release wrote it.
                var file = try fileContents(path)
                file[8] = 1
                resealStateFileHeader(&file)
                try Data(file).write(to: URL(fileURLWithPath: path))
            }, refusal: { error in
                error as? CacheError == .stateFile(.unsupportedFormatVersion(path: directory + "/state", found: 1, supported: 4))
            })
            #expect(try fileContents(path)[8] == 3)
        }
    }

    /// The example at the top of README.md, with temporary paths.
    @Test func theReadmeExampleWorks() async throws {
        try await withTemporaryDirectory { directory in
            let log = try FileDatastore(directory: directory + "/log")
            try await log.createIfMissing()
            let cache = try SharedCache(statePath: directory + "/myapp.whycache", datastore: log)
            try await cache.update()

            let id = try await cache.set(Array("on".utf8), forKey: "flag/new-checkout".utf8)
            #expect(id == 1)
            let flag = try cache.value(forKey: "flag/new-checkout".utf8)
            #expect(flag == Array("on".utf8))
            try await cache.set(encoding: ["eu-west", "us-east"], forKey: "routing/regions".utf8)
            let regions = try cache.value(decoding: [String].self, forKey: "routing/regions".utf8)
            #expect(regions == ["eu-west", "us-east"])

            let snapshot = try cache.snapshot()
            var seen: [String] = []
            try snapshot.visitEntries(in: .prefix(Array("flag/".utf8))) { key, value in
                seen.append(String(decoding: key, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
                return true
            }
            snapshot.close()
            #expect(seen == ["flag/new-checkout=on"])
        }
    }
}
