import Foundation
import Testing
import WhyCache

/// Helpers for the cache tests: a store and cache in a temporary directory,
/// and an independent model of what the log holds.
enum CacheFixture {
    /// A fresh file datastore in `directory/log` (no fsync: the tests do not crash the machine).
    static func makeStore(_ directory: String) async throws -> FileDatastore {
        let store = try FileDatastore(
            directory: directory + "/log", options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 64 << 10))
        try await store.createIfMissing()
        return store
    }

    /// A cache on `directory/name` over `store`.
    static func makeCache(
        _ directory: String, _ store: any Datastore, name: String = "state", configuration: SharedCache.Configuration = .init()
    ) throws -> SharedCache {
        try SharedCache(statePath: directory + "/" + name, datastore: store, configuration: configuration)
    }

    /// The state the whole log produces, computed without the cache: every
    /// record decoded with ``LogRecord`` and applied to a dictionary.
    static func replay(_ store: any Datastore, through limit: UInt64? = nil) async throws -> [[UInt8]: [UInt8]] {
        var state: [[UInt8]: [UInt8]] = [:]
        for try await entry in store.records(after: 0, through: limit) {
            for operation in try LogRecord(decoding: entry.payload).operations {
                switch operation {
                case .set(let key, let value): state[key] = value
                case .delete(let key): state[key] = nil
                }
            }
        }
        return state
    }

    /// Every entry of `cache`, as a dictionary.
    static func contents(_ cache: SharedCache) throws -> [[UInt8]: [UInt8]] {
        Dictionary(uniqueKeysWithValues: try cache.entries().map { ($0.key, $0.value) })
    }

    /// Expects `cache` to hold exactly `expected`, naming the first difference.
    static func expectContents(
        _ cache: SharedCache, equal expected: [[UInt8]: [UInt8]], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let actual = try contents(cache)
        #expect(actual.count == expected.count, "key count", sourceLocation: sourceLocation)
        if let key = expected.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).first(where: { actual[$0] != expected[$0] }) {
            Issue.record("key \(String(decoding: key, as: UTF8.self)): \(actual[key].map { String(decoding: $0, as: UTF8.self) } ?? "missing") instead of \(String(decoding: expected[key]!, as: UTF8.self))", sourceLocation: sourceLocation)
        }
        if let key = actual.keys.first(where: { expected[$0] == nil }) {
            Issue.record("unexpected key \(String(decoding: key, as: UTF8.self))", sourceLocation: sourceLocation)
        }
    }
}

/// A log and a model of the state it produces: every write goes to both.
final class ModelledLog: @unchecked Sendable {
    // @unchecked Sendable: used by one test task at a time.
    let store: any Datastore
    var model: [[UInt8]: [UInt8]] = [:]

    init(store: any Datastore) { self.store = store }

    /// Appends one record of `operations` and applies them to the model.
    @discardableResult
    func write(_ operations: [LogOperation]) async throws -> UInt64 {
        for operation in operations {
            switch operation {
            case .set(let key, let value): model[key] = value
            case .delete(let key): model[key] = nil
            }
        }
        return try await store.append(try LogRecord(operations).encoded())
    }
}

/// `text` as bytes.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
