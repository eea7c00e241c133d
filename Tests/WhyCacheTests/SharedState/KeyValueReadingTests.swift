import Testing
import WhyCache

/// The read forms `KeyValueReading` gives a cache, its state file and a
/// pinned snapshot: each reads the same values, and each reports a bad key
/// with its own type's error.
@Suite struct KeyValueReadingTests {
    /// What every read form finds for `key` in `source`, through the protocol only.
    private func reads(
        _ key: [UInt8], in source: some KeyValueReading
    ) throws -> (value: [UInt8]?, contains: Bool, borrowed: [UInt8]?, slice: [UInt8]?, throwing: Int?) {
        let slice = ([0xFF] + key)[1...]
        return (
            try source.value(forKey: key),
            try source.contains(key),
            try source.withValue(forKey: key) { $0.map { Array($0) } },
            try source.withValue(forKey: slice) { $0.map { Array($0) } },
            try source.withValue(forKey: key) { (value) throws -> Int? in value?.count }
        )
    }

    @Test func aCacheItsFileAndASnapshotReadTheSameValues() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            try await cache.set(bytes("value"), forKey: bytes("present"))
            try await cache.set([UInt8](repeating: 7, count: 3000), forKey: bytes("large"))
            let file = try SharedStateFile.open(at: directory + "/state")
            let snapshot = try file.snapshot()
            defer { snapshot.close() }
            for key in [bytes("present"), bytes("large"), bytes("absent"), bytes("presen")] {
                let fromCache = try reads(key, in: cache)
                let fromFile = try reads(key, in: file)
                let fromSnapshot = try reads(key, in: snapshot)
                for found in [fromCache, fromFile, fromSnapshot] {
                    let expected: [UInt8]? = switch key {
                    case bytes("present"): bytes("value")
                    case bytes("large"): [UInt8](repeating: 7, count: 3000)
                    default: nil
                    }
                    #expect(found.value == expected)
                    #expect(found.contains == (expected != nil))
                    #expect(found.borrowed == expected)
                    #expect(found.slice == expected)
                    #expect(found.throwing == expected?.count)
                }
            }
            cache.close()
        }
    }

    /// A bad key, and a closed reader, are each type's own typed error.
    @Test func eachTypeReportsABadKeyWithItsOwnError() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            try await cache.set(bytes("v"), forKey: bytes("k"))
            let tooLong = [UInt8](repeating: 1, count: WhyCacheLimits.maximumKeyLength + 1)
            for key in [[], tooLong] {
                #expect(throws: CacheError.invalidKey(length: key.count)) { try cache.contains(key) }
            }
            let file = try SharedStateFile.open(at: directory + "/state")
            let snapshot = try file.snapshot()
            for key in [[], tooLong] {
                #expect(throws: StateFileError.invalidKeyLength(key.count)) { try file.value(forKey: key) }
                #expect(throws: StateFileError.invalidKeyLength(key.count)) { try snapshot.value(forKey: key) }
            }
            snapshot.close()
            #expect(throws: StateFileError.closed(path: directory + "/state")) { try snapshot.contains(bytes("k")) }
            cache.close()
            #expect(throws: CacheError.closed(path: directory + "/state")) { try cache.value(forKey: bytes("k")) }
        }
    }
}
