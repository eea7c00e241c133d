import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// Change streams (``SharedCache/changes(after:matching:pollInterval:)``):
/// every change in log order, prefix filtering, changes applied by another
/// process, slow consumers, history rewrites, and the end of a stream.
@Suite struct ChangeStreamTests {
    /// Collects `count` events from `stream`.
    private func collect(_ count: Int, from stream: CacheChanges) async throws -> [CacheChangeEvent] {
        var events: [CacheChangeEvent] = []
        for try await event in stream {
            events.append(event)
            if events.count == count { break }
        }
        return events
    }

    /// The changes a list of operations makes, as events, optionally only under `prefix`.
    private func expected(_ records: [(UInt64, [LogOperation])], prefix: [UInt8] = []) -> [CacheChangeEvent] {
        records.flatMap { id, operations in
            operations.filter { $0.key.starts(with: prefix) }.map { .changed(CacheChange(updateID: id, key: $0.key, value: $0.value)) }
        }
    }

    /// Random writes through the cache while a stream is consumed: it sees
    /// every set and delete in log order, and a prefix stream only its keys.
    @Test func aStreamSeesEveryChangeInLogOrder() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let all = try cache.changes()
            let users = try cache.changes(matching: bytes("user/"))
            var generator = SeededGenerator(seed: 0xC4A)
            var records: [(UInt64, [LogOperation])] = []
            for index in 0..<300 {
                let operations: [LogOperation] = (0..<Int.random(in: 1...3, using: &generator)).map { item in
                    let key = bytes((item == 0 ? "user/" : "other/") + "\(Int.random(in: 0..<20, using: &generator))")
                    return Int.random(in: 0..<4, using: &generator) == 0 ? .delete(key: key) : .set(key: key, value: bytes("\(index)"))
                }
                records.append((try await cache.write(operations), operations))
            }
            let everything = expected(records)
            #expect(try await collect(everything.count, from: all) == everything)
            let filtered = expected(records, prefix: bytes("user/"))
            #expect(try await collect(filtered.count, from: users) == filtered)
        }
    }

    /// A process that never updates sees, through its stream, the records
    /// that another process applies to the shared state file.
    @Test func changesAppliedByAnotherProcessAreSeen() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let stream = try cache.changes(pollInterval: .milliseconds(20))
            var records: [(UInt64, [LogOperation])] = []
            for index in 0..<20 {
                let operations: [LogOperation] = [.set(key: bytes("k\(index % 7)"), value: bytes("v\(index)"))]
                records.append((try await store.append(try LogRecord(operations).encoded()), operations))
            }
            let updated = try await HelperProcess.run(["cache-update", directory + "/log", directory + "/state", "1000"])
            #expect(updated.last == "updated 20 20")
            #expect(try await collect(20, from: stream) == expected(records))
        }
    }

    /// A consumer that reads nothing while 5,000 records are applied loses
    /// nothing and slows nothing down: it then reads them all, in order.
    @Test func aSlowConsumerMissesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let stream = try cache.changes()
            var records: [(UInt64, [LogOperation])] = []
            for index in 0..<5_000 {
                let operations: [LogOperation] = [.set(key: bytes("k\(index % 100)"), value: bytes("v\(index)"))]
                records.append((try await store.append(try LogRecord(operations).encoded()), operations))
                if index % 1_000 == 999 { try await cache.update() }
            }
            #expect(try await collect(5_000, from: stream) == expected(records))
        }
    }

    /// A stream whose unread records a history rewrite removed gets the
    /// documented signal, then the changes after the state it resumed at.
    @Test func aStreamBehindAHistoryRewriteIsToldAndResumes() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let stream = try cache.changes()
            for index in 0..<50 { try await cache.set(bytes("v\(index)"), forKey: bytes("k\(index % 5)")) }
            _ = try await HistoryRewriter(datastore: store, scratchDirectory: directory).rewrite(through: 40)
            var iterator = stream.makeAsyncIterator()
            #expect(try await iterator.next() == .historyRewritten(missedAfter: 0, resumedAfter: 50))
            let id = try await cache.set(bytes("after"), forKey: bytes("k0"))
            #expect(try await iterator.next() == .changed(CacheChange(updateID: id, key: bytes("k0"), value: bytes("after"))))
        }
    }

    /// Closing the cache ends a waiting stream; so does cancelling its task.
    @Test func aStreamEndsWhenTheCacheClosesOrItsTaskIsCancelled() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let stream = try cache.changes(pollInterval: .milliseconds(10))
            let cancelled = Task { try await collect(1, from: stream) }
            let closing = Task { try await collect(1, from: stream) }
            try await Task.sleep(for: .milliseconds(50))
            cancelled.cancel()
            #expect(try await cancelled.value.isEmpty)
            cache.close()
            #expect(try await closing.value.isEmpty)
        }
    }
}
