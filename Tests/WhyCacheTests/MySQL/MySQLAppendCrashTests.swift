import Foundation
import Synchronization
import Testing
import WhyCache
import WhyCacheMySQL

/// A server that dies while appends in one request are in flight
/// (docs/FORMAT.md §4.3): nothing acknowledged is lost, no id is handed out
/// twice, an append whose outcome is unknown is in the log whole or not at
/// all, and a reader never waits for an id that will not come.
@Suite(.serialized) struct MySQLAppendCrashTests {
    /// What one writer task saw.
    private struct WriterReport: Sendable {
        /// Payloads whose append returned, with their ids.
        var acknowledged: [(payload: [UInt8], id: UInt64)] = []
        /// Payloads whose append failed with `appendOutcomeUnknown`.
        var unknown: [[UInt8]] = []
        /// The error that stopped the writer.
        var failure: DatastoreError?
    }

    /// Eight writers append one single-key record after another (each
    /// request in flight, the server never idle) while a cache follows the
    /// log; the server is frozen in the middle of their requests and then
    /// killed, so that requests die on it at every stage; then it restarts.
    @Test func aServerKilledInTheMiddleOfAppendsLosesNothingAcknowledged() async throws {
        let directory = try PrivateMariaDB.makeFolder()
        let server = try PrivateMariaDB(directory: directory + "/server")
        defer {
            try? server.send(SIGCONT)
            try? server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try server.start()
        var configuration = try server.configuration()
        // Two transactions in flight: one waits for the counter row while the
        // other commits when the server dies.
        configuration.maximumConcurrentAppends = 2
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        let reader = try SharedCache(statePath: directory + "/reader", datastore: store)

        let stop = StopFlag()
        let writers = (0..<8).map { writer in
            Task { () -> WriterReport in
                var report = WriterReport()
                var index = 0
                while !stop.isSet {
                    let payload = try LogRecord([.set(key: bytes("w\(writer)-\(index)"), value: bytes("value \(writer) \(index)"))]).encoded()
                    index += 1
                    do {
                        report.acknowledged.append((payload, try await store.append(payload)))
                    } catch let error as DatastoreError {
                        if case .appendOutcomeUnknown = error { report.unknown.append(payload) }
                        report.failure = error
                        break
                    }
                }
                return report
            }
        }
        // Let the writers run, with the reader following, then freeze the
        // server under their requests and kill it.
        for _ in 0..<10 {
            try await reader.update()
            try await Task.sleep(for: .milliseconds(30))
        }
        try server.send(SIGSTOP)
        try await Task.sleep(for: .milliseconds(200))
        try server.kill()
        var reports: [WriterReport] = []
        for writer in writers { reports.append(try await writer.value) }
        stop.set()
        for report in reports {
            switch report.failure {
            case .unavailable?, .appendOutcomeUnknown?: break
            case let other: Issue.record("a writer stopped with \(String(describing: other))")
            }
        }
        let acknowledged = reports.flatMap(\.acknowledged)
        let unknown = Set(reports.flatMap(\.unknown))
        #expect(acknowledged.count > 0)
        #expect(Set(acknowledged.map(\.id)).count == acknowledged.count, "an id was acknowledged twice")

        try server.start()
        let after = try await store.append(try LogRecord([.set(key: bytes("after"), value: bytes("restart"))]).encoded())
        #expect(after > acknowledged.map(\.id).max() ?? 0, "an id was handed out again after the restart")

        // Every acknowledged record is in the log under its id; every record
        // is one that was acknowledged, unknown, or written after the restart,
        // and none is there twice.
        var logged: [UInt64: [UInt8]] = [:]
        var order: [UInt64] = []
        for try await entry in store.records(after: 0) {
            logged[entry.updateID] = entry.payload
            order.append(entry.updateID)
        }
        #expect(order == order.sorted() && Set(order).count == order.count)
        for (payload, id) in acknowledged {
            #expect(logged[id] == payload, "acknowledged record \(id) lost or changed")
        }
        let known = Set(acknowledged.map(\.payload)).union(unknown)
        let payloads = order.compactMap { logged[$0] }
        #expect(Set(payloads).count == payloads.count, "a record is in the log twice")
        #expect(payloads.dropLast().allSatisfy { known.contains($0) }, "the log holds a record nobody appended")
        #expect(logged[after] != nil)

        // A reader that was behind catches up to the end, and a fresh one
        // replays the same state: no id is waited for that will not come.
        let latest = try await store.latestUpdateID()
        #expect(latest == after)
        try await reader.update(through: latest)
        #expect(try reader.updateID() == latest)
        let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
        try await fresh.update()
        #expect(try fresh.updateID() == latest)
        try CacheFixture.expectContents(reader, equal: try CacheFixture.contents(fresh))
        for (payload, id) in acknowledged {
            guard case .set(let key, let value)? = try LogRecord(decoding: payload).operations.first else { continue }
            #expect(try fresh.value(forKey: key) == value, "acknowledged record \(id)")
        }
        await store.close()
    }
}

/// A flag the test sets once, read by the tasks it started.
private final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    /// Whether ``set()`` ran.
    var isSet: Bool { flag.load(ordering: .relaxed) }

    /// Sets the flag.
    func set() { flag.store(true, ordering: .relaxed) }
}
