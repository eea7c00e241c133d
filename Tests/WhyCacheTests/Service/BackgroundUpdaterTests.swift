import Foundation
import Logging
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing
@testable import WhyCache

/// A file datastore that fails every call while `failing` is set: a real
/// datastore with an outage switch, for the updater's backoff and recovery.
/// It counts the calls made (`calls`), except those of tasks that set
/// `uncounted` (a change stream's, where a test counts the updater's).
final class SwitchableDatastore: Datastore {
    let base: FileDatastore
    let failing = Atomic<Bool>(false)
    let calls = Atomic<Int>(0)
    @TaskLocal static var uncounted = false

    init(_ base: FileDatastore) { self.base = base }

    private func check() throws(DatastoreError) {
        if !Self.uncounted { calls.add(1, ordering: .relaxed) }
        if failing.load(ordering: .relaxed) { throw .unavailable(reason: "switched off by the test") }
    }

    func createIfMissing() async throws(DatastoreError) { try check(); try await base.createIfMissing() }
    func latestUpdateID() async throws(DatastoreError) -> UInt64 { try check(); return try await base.latestUpdateID() }
    func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64 { try check(); return try await base.firstRetainedUpdateID() }
    func readRecords(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> [LogEntry] {
        try check()
        return try await base.readRecords(after: after, through: through, limits: limits)
    }
    func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        try check()
        return try await base.append(contentsOf: payloads)
    }
    func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo? { try check(); return try await base.latestCheckpoint() }
    func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter {
        try check()
        return try await base.beginCheckpoint(at: updateID)
    }
    func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        try check()
        return try await base.readCheckpoint(checkpoint, from: position, limits: limits)
    }
    func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError) { try check(); try await base.removeCheckpoints(before: updateID) }
    func removeRecords(through updateID: UInt64) async throws(DatastoreError) { try check(); try await base.removeRecords(through: updateID) }
    func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock {
        try check()
        return try await base.acquireMaintenanceLock()
    }
}

/// ``BackgroundUpdater``: rounds at an interval and on demand, waiters for
/// an update id, backoff and recovery, graceful shutdown, and the metrics.
@Suite struct BackgroundUpdaterTests {
    /// Runs `body` with an updater of a cache on a fresh file log, inside a
    /// ServiceGroup that is shut down gracefully afterwards.
    private func withUpdater(
        interval: Duration = .seconds(30), maximumBackoff: Duration = .seconds(30),
        _ body: (BackgroundUpdater, SwitchableDatastore, TestMetrics, String) async throws -> Void
    ) async throws {
        try await withTemporaryDirectory { directory in
            let store = SwitchableDatastore(try await CacheFixture.makeStore(directory))
            let metrics = TestMetrics()
            var configuration = SharedCache.Configuration()
            configuration.metricsFactory = metrics
            configuration.metricsName = "test"
            let cache = try SharedCache(statePath: directory + "/state", datastore: store, configuration: configuration)
            let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: interval, maximumBackoff: maximumBackoff))
            let group = ServiceGroup(services: [updater], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let running = Task { try await group.run() }
            do {
                try await body(updater, store, metrics, directory)
            } catch {
                await group.triggerGracefulShutdown()
                _ = try? await running.value
                throw error
            }
            await group.triggerGracefulShutdown()
            try await running.value
        }
    }

    /// Another process writes (the tool, as a separate process) and this one
    /// waits for its update id: it returns once the value is readable here,
    /// although the interval is far longer than the test.
    @Test func aWaiterReturnsOnceAnotherProcessesWriteIsApplied() async throws {
        try await withUpdater { updater, _, metrics, directory in
            let options = ["--store", "file://\(directory)/log", "--state", directory + "/writer-state"]
            for round in 0..<3 {
                let written = try await ToolRunner.run(["set", "greeting", "hello \(round)"] + options)
                let id = try #require(written.lines.first.flatMap { UInt64($0) }, "\(written.errors)")
                try await updater.waitUntilApplied(through: id)
                #expect(try updater.cache.value(forKey: bytes("greeting")) == bytes("hello \(round)"))
            }
            #expect(try metrics.expectGauge("whycache_local_update_id", [("cache", "test")]).lastValue == 3)
            #expect(metrics.counterTotal(label: "whycache_records_applied_total") == 3)
            #expect(metrics.counterTotal(label: "whycache_keys_applied_total") == 3)
            #expect(try metrics.expectTimer("whycache_update_duration", [("cache", "test")]).values.count == 3)
            #expect(try metrics.expectGauge("whycache_lag_update_ids", [("cache", "test")]).lastValue == 0)
            #expect((try metrics.expectGauge("whycache_state_file_bytes", [("cache", "test")]).lastValue ?? 0) > 0)
            #expect(try metrics.expectGauge("whycache_live_readers", [("cache", "test")]).lastValue != nil)
        }
    }

    /// While the datastore fails, rounds fail and back off (counted in the
    /// metrics) and a waiter keeps waiting; when it works again the waiter
    /// returns and the failure count goes back to 0.
    @Test func theUpdaterRecoversWhenTheDatastoreComesBack() async throws {
        try await withUpdater(interval: .milliseconds(20), maximumBackoff: .milliseconds(80)) { updater, store, metrics, _ in
            let id = try await store.base.append(try LogRecord([.set(key: bytes("k"), value: bytes("v"))]).encoded())
            try await updater.waitUntilApplied(through: id)
            store.failing.store(true, ordering: .relaxed)
            let next = try await store.base.append(try LogRecord([.set(key: bytes("k"), value: bytes("w"))]).encoded())
            let waiter = Task { try await updater.waitUntilApplied(through: next) }
            for _ in 0..<1_000 where metrics.counterTotal(label: "whycache_update_errors_total") < 4 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(metrics.counterTotal(label: "whycache_update_errors_total") >= 4)
            #expect(updater.consecutiveFailures >= 3)
            #expect(try updater.cache.value(forKey: bytes("k")) == bytes("v"), "reads go on during the outage")
            store.failing.store(false, ordering: .relaxed)
            try await waiter.value
            #expect(try updater.cache.value(forKey: bytes("k")) == bytes("w"))
            #expect(updater.consecutiveFailures == 0)
        }
    }

    /// Graceful shutdown fails pending waiters with `shutDown`, and later
    /// waits fail at once; a cancelled waiter gets `cancelled`.
    @Test func waitersFailCleanlyOnShutdownAndCancellation() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            let updater = BackgroundUpdater(cache: cache)
            let group = ServiceGroup(services: [updater], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let running = Task { try await group.run() }
            let pending = Task { () async -> BackgroundUpdaterError? in
                do throws(BackgroundUpdaterError) { try await updater.waitUntilApplied(through: 1_000) } catch { return error }
                return nil
            }
            let cancelled = Task { () async -> BackgroundUpdaterError? in
                do throws(BackgroundUpdaterError) { try await updater.waitUntilApplied(through: 2_000) } catch { return error }
                return nil
            }
            try await Task.sleep(for: .milliseconds(50))
            cancelled.cancel()
            guard case .cancelled? = await cancelled.value else { Issue.record("expected cancelled"); return }
            await group.triggerGracefulShutdown()
            try await running.value
            guard case .shutDown? = await pending.value else { Issue.record("expected shutDown"); return }
            await #expect(throws: BackgroundUpdaterError.self) { try await updater.waitUntilApplied(through: 5) }
            // An id already applied needs no running updater.
            try await updater.waitUntilApplied(through: 0)
        }
    }

    /// The wait between rounds doubles per failure, from the interval up to
    /// the maximum backoff.
    @Test func theBackoffDoublesUpToTheMaximum() {
        let configuration = BackgroundUpdater.Configuration(interval: .milliseconds(100), maximumBackoff: .seconds(1))
        let waits = (0..<7).map { BackgroundUpdater.delay(afterFailures: $0, configuration: configuration) }
        #expect(waits == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1), .seconds(1)])
    }

    /// The file gauges follow the shared file when another process (here:
    /// another cache on the file) applied the changes: the updater's rounds
    /// record them although its own updates apply nothing.
    @Test func theFileGaugesFollowChangesAppliedElsewhere() async throws {
        try await withUpdater(interval: .milliseconds(50)) { updater, store, metrics, directory in
            let writer = try SharedCache(statePath: updater.cache.statePath, datastore: store)
            defer { writer.close() }
            for round in 0..<20 {
                try await writer.set(Array(repeating: UInt8(round), count: 200), forKey: bytes("k\(round % 4)"))
            }
            #expect(try updater.cache.statistics().freeBytes > 0)
            // The file's free space still changes after the writes (space that
            // old versions held is reclaimed once no reader needs it), so the
            // gauges are compared with the file as it is at each look.
            var recorded: (free: Double?, size: Double?) = (nil, nil)
            var file = try updater.cache.statistics()
            for _ in 0..<600 {
                file = try updater.cache.statistics()
                recorded = (
                    try? metrics.expectGauge("whycache_state_free_bytes", [("cache", "test")]).lastValue,
                    try? metrics.expectGauge("whycache_state_file_bytes", [("cache", "test")]).lastValue
                )
                if recorded.free == Double(file.freeBytes), recorded.size == Double(file.fileSize) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(recorded.free == Double(file.freeBytes), "free bytes gauge \(String(describing: recorded.free)), file \(file.freeBytes)")
            #expect(recorded.size == Double(file.fileSize), "file bytes gauge \(String(describing: recorded.size)), file \(file.fileSize)")
        }
    }
}
