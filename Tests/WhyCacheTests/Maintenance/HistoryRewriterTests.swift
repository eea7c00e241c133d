import Foundation
import Synchronization
import Testing
import WhyCache

/// ``HistoryRewriter`` on the file datastore (the MySQL suite runs the same
/// checks through ``HistoryRewriterChecks``).
@Suite struct HistoryRewriterTests {
    private func check(_ body: (HistoryRewriterChecks) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            try await body(HistoryRewriterChecks(directory: directory) { try await CacheFixture.makeStore(directory + "/" + UUID().uuidString) })
        }
    }

    @Test func machinesAtEveryPositionConverge() async throws { try await check { try await $0.machinesAtEveryPositionConverge() } }
    @Test func theFilterDropsKeysFromTheCheckpoint() async throws { try await check { try await $0.theFilterDropsKeysFromTheCheckpoint() } }
    @Test func oneRewriteAtATime() async throws { try await check { try await $0.oneRewriteAtATime() } }
    @Test func writersKeepAppendingDuringARewrite() async throws { try await check { try await $0.writersKeepAppendingDuringARewrite() } }

    /// `rewrite(keepingLast:)` on a log shorter than what it keeps changes
    /// nothing (no underflow); on a longer one it rewrites through the
    /// newest id minus the count.
    @Test func keepingTheLastRecordsNeverReachesBelowTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory + "/log")
            let rewriter = HistoryRewriter(datastore: store, scratchDirectory: directory)
            #expect(try await rewriter.rewrite(keepingLast: 10_000) == nil)
            for index in 0..<30 { _ = try await store.append(try LogRecord([.set(key: bytes("k\(index)"), value: bytes("v"))]).encoded()) }
            #expect(try await rewriter.rewrite(keepingLast: 30) == nil)
            #expect(try await store.firstRetainedUpdateID() == 1)
            let report = try await rewriter.rewrite(keepingLast: 10)
            #expect(report?.checkpoint?.updateID == 20)
            #expect(try await store.firstRetainedUpdateID() == 21)
        }
    }
}

/// The checks of a history rewrite, for any datastore.
struct HistoryRewriterChecks {
    /// Where state files and scratch files go.
    let directory: String
    /// A fresh, empty, created datastore.
    let makeStore: () async throws -> any Datastore

    /// Machines never updated, in the middle of the rewritten range, at
    /// limit − 1, at the limit and past it all end equal to the log's state,
    /// including keys deleted inside the rewritten range; the log shrinks.
    func machinesAtEveryPositionConverge() async throws {
        let log = ModelledLog(store: try await makeStore())
        func machine(_ name: String) throws -> SharedCache { try CacheFixture.makeCache(directory, log.store, name: name) }
        for index in 0..<200 { try await log.write([.set(key: bytes("k\(index % 50)"), value: bytes("a\(index)"))]) }
        try await log.write([.set(key: bytes("deleted-later"), value: bytes("x")), .set(key: bytes("kept"), value: bytes("y"))])
        let middle = try machine("middle")
        try await middle.update()
        for index in 0..<200 { try await log.write([.set(key: bytes("k\(index % 70)"), value: bytes("b\(index)"))]) }
        try await log.write([.delete(key: bytes("deleted-later"))])
        let beforeLimit = try machine("before-limit")
        try await beforeLimit.update()
        let limit = try await log.write([.set(key: bytes("limit"), value: bytes("L"))])
        let atLimit = try machine("at-limit")
        try await atLimit.update()
        for index in 0..<20 { try await log.write([.set(key: bytes("after\(index)"), value: bytes("c"))]) }
        let past = try machine("past")
        try await past.update()
        for index in 0..<20 { try await log.write([.delete(key: bytes("k\(index)"))]) }
        let never = try machine("never")

        let report = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: limit)
        #expect(report.checkpoint?.updateID == limit)
        #expect(report.recordsAfter == 40)
        // (A compacting datastore holds fewer records before than ids.)
        #expect(report.recordsBefore > report.recordsAfter)
        #expect(try await log.store.firstRetainedUpdateID() == limit + 1)

        let latest = try await log.store.latestUpdateID()
        for cache in [never, middle, beforeLimit, atLimit, past, try machine("fresh")] {
            try await cache.update()
            #expect(try cache.updateID() == latest)
            #expect(try cache.value(forKey: bytes("deleted-later")) == nil)
            try CacheFixture.expectContents(cache, equal: log.model)
        }
        // Running it again through the same limit finds nothing to do.
        let again = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: limit)
        #expect(again.recordsAfter == again.recordsBefore)
    }

    /// The filter drops keys from the checkpoint: machines that rebuild lose
    /// them, machines past the limit keep them (the intended divergence).
    func theFilterDropsKeysFromTheCheckpoint() async throws {
        let log = ModelledLog(store: try await makeStore())
        for index in 0..<30 {
            try await log.write([.set(key: bytes("keep/\(index)"), value: bytes("v")), .set(key: bytes("tmp/\(index)"), value: bytes("t"))])
        }
        let limit = try await log.store.latestUpdateID()
        let past = try CacheFixture.makeCache(directory, log.store, name: "past")
        try await past.update()
        let report = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory)
            .rewrite(through: limit, keeping: { !$0.starts(with: Array("tmp/".utf8)) })
        #expect(report.keysDropped == 30)
        let fresh = try CacheFixture.makeCache(directory, log.store, name: "fresh")
        try await fresh.update()
        #expect(try fresh.keys(in: .prefix(bytes("tmp/"))).isEmpty)
        #expect(try fresh.keys(in: .prefix(bytes("keep/"))).count == 30)
        try await past.update()
        #expect(try past.keys(in: .prefix(bytes("tmp/"))).count == 30)
    }

    /// A second rewrite while one holds the maintenance lock is refused.
    func oneRewriteAtATime() async throws {
        let log = ModelledLog(store: try await makeStore())
        for index in 0..<10 { try await log.write([.set(key: bytes("k\(index)"), value: bytes("v"))]) }
        let lock = try await log.store.acquireMaintenanceLock()
        do {
            _ = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: 5)
            Issue.record("a second rewrite ran")
        } catch CacheError.datastore(.maintenanceLockHeld) {
        }
        await lock.release()
        let report = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory).rewrite(through: 5)
        #expect(report.checkpoint?.updateID == 5)
    }

    /// Appends made while the rewrite runs are neither lost nor reordered.
    func writersKeepAppendingDuringARewrite() async throws {
        let log = ModelledLog(store: try await makeStore())
        for index in 0..<500 { try await log.write([.set(key: bytes("k\(index % 100)"), value: bytes("a\(index)"))]) }
        let store = log.store
        let writer = Task {
            var written: [(key: [UInt8], value: [UInt8])] = []
            for index in 0..<300 {
                let item = (key: bytes("k\(index % 130)"), value: bytes("w\(index)"))
                _ = try await store.append(try LogRecord([.set(key: item.key, value: item.value)]).encoded())
                written.append(item)
            }
            return written
        }
        _ = try await HistoryRewriter(datastore: store, scratchDirectory: directory).rewrite(through: 500)
        for item in try await writer.value { log.model[item.key] = item.value }
        let fresh = try CacheFixture.makeCache(directory, store, name: "fresh")
        try await fresh.update()
        try CacheFixture.expectContents(fresh, equal: log.model)
    }
}
