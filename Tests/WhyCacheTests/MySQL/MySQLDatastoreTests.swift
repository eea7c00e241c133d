import Foundation
import Synchronization
import Testing
import WhyCache
@testable import WhyCacheMySQL

/// Behaviour of ``MySQLDatastore`` beyond the shared conformance checks, on
/// the real test server: ordering under a slow appender, compaction of
/// single-key records, corruption, configuration and error messages.
@Suite struct MySQLDatastoreTests {
    /// One appender takes its id and then holds its transaction open (exactly
    /// the datastore's append, with a pause before `COMMIT`) for at least
    /// two seconds, until the test lets it commit, while four other tasks
    /// append and a reader polls the log.
    ///
    /// With `AUTO_INCREMENT` ids the others would commit ids after the slow
    /// one's and a reader would jump over it for good. Here the others wait
    /// for the counter row, the reader sees nothing past the last committed
    /// id while the slow one is open, and afterwards the reader has read
    /// every id exactly once, in order, the slow one included.
    @Test func aSlowAppenderHoldsLaterAppendsBackAndNoReaderSkipsIt() async throws {
        // The others' appends wait on the counter row while the test holds
        // it, and the server gives such a wait up after
        // innodb_lock_wait_timeout (50 s): every step runs on a thread of its
        // own, never behind other tests on the cooperative pool.
        let executor = ThreadTaskExecutor(name: "aSlowAppenderHoldsLaterAppendsBackAndNoReaderSkipsIt")
        try await withTaskExecutorPreference(executor) { () async throws in
            try await slowAppenderHoldsLaterAppendsBack(on: executor)
        }
    }

    private func slowAppenderHoldsLaterAppendsBack(on executor: ThreadTaskExecutor) async throws {
        var configuration = try MySQLTestServer.configuration()
        // The others' appends wait on the counter row for as long as this
        // test's task takes to let the slow one commit, which on a loaded
        // 2-core machine can exceed the default 30 s read timeout (they then
        // failed with "lost connection", MySQL error 2013).
        configuration.readTimeout = .seconds(300)
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        let before = try await store.append(contentsOf: (0..<5).map { Array("early \($0)".utf8) })

        let log = MySQLLogTable(schema: MySQLSchema(table: configuration.table), location: configuration.location, compactsSingleKeyRecords: true)
        let slowConnection = try await MySQLConnection.open(configuration, traffic: MySQLTraffic())
        let slowID = Atomic<UInt64>(0)
        let mayCommit = Atomic<Bool>(false)
        let slow = Task(executorPreference: executor) {
            try await slowConnection.run { connection throws(MySQLTransactionError) -> UInt64 in
                try connection.transaction { () throws(MySQLWorkError) -> UInt64 in
                    let ids = try log.append([Array("slow".utf8)], on: connection)
                    slowID.store(ids[0], ordering: .releasing)
                    // Hold the transaction (and the counter row) open; bounded
                    // so that a failing test cannot hang the suite.
                    for _ in 0..<30_000 where !mayCommit.load(ordering: .acquiring) {
                        Thread.sleep(forTimeInterval: 0.01)
                    }
                    return ids[0]
                }
            }
        }
        while slowID.load(ordering: .acquiring) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let heldID = slowID.load(ordering: .acquiring)
        #expect(heldID == before[4] + 1)

        let returnedAppends = AppendCounter()
        let others = (0..<4).map { writer in
            Task(executorPreference: executor) {
                var ids: [UInt64] = []
                for index in 0..<5 {
                    ids.append(try await store.append(Array("writer \(writer) item \(index)".utf8)))
                    returnedAppends.count.add(1, ordering: .releasing)
                }
                return ids
            }
        }
        // The reader follows the log the way `update()` does.
        var position: UInt64 = 0
        var seen: [UInt64] = []
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            for entry in try await store.readRecords(after: position, through: nil, limits: .default) {
                seen.append(entry.updateID)
                position = entry.updateID
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen == before, "while the slow append is open, nothing after it is readable")
        #expect(try await store.latestUpdateID() == before[4])
        #expect(returnedAppends.count.load(ordering: .acquiring) == 0, "no other append returned while the slow one held the counter")
        mayCommit.store(true, ordering: .releasing)

        #expect(try await slow.value == heldID)
        var otherIDs: [UInt64] = []
        for task in others { otherIDs += try await task.value }
        #expect(otherIDs.allSatisfy { $0 > heldID })
        for try await entry in store.records(after: position) {
            seen.append(entry.updateID)
        }
        #expect(seen == Array(1...(heldID + 20)))
        #expect(Set(otherIDs).count == 20)
        await slowConnection.close()
    }

    /// 500 single-key sets of one key keep one record of it in the log; a
    /// multi-key record is never removed; machines at every position reach
    /// the newest value.
    @Test func repeatedSingleKeyWritesKeepOneRecordPerKey() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            let writer = try SharedCache(statePath: directory + "/writer", datastore: store)
            let multi = try await writer.set(contentsOf: [(key: bytes("a"), value: bytes("a0")), (key: bytes("hot"), value: bytes("h0"))])
            let behind = try SharedCache(statePath: directory + "/behind", datastore: store)
            try await behind.update()
            for round in 1...500 {
                try await writer.set(bytes("h\(round)"), forKey: bytes("hot"))
                if round % 100 == 0 { try await writer.set(bytes("c\(round)"), forKey: bytes("cold")) }
            }
            try await writer.delete(bytes("a"))
            let rows = try MySQLTestServer.sql("SELECT COUNT(*) FROM \(configuration.table.name) WHERE part = 0")
            // The multi-key record, the newest "hot", the newest "cold" and the delete of "a".
            #expect(rows == "4")
            let latest = try await store.latestUpdateID()
            #expect(latest == multi + 506)

            for machine in [behind, try SharedCache(statePath: directory + "/fresh", datastore: store)] {
                try await machine.update()
                #expect(try machine.updateID() == latest)
                #expect(try machine.value(forKey: bytes("hot")) == bytes("h500"))
                #expect(try machine.value(forKey: bytes("cold")) == bytes("c500"))
                #expect(try machine.value(forKey: bytes("a")) == nil)
            }
        }
    }

    /// A machine that meets a hole left by compaction never commits a
    /// position inside it: with one operation per transaction and a target
    /// inside the hole, the update still ends where the replacement is applied.
    @Test func anUpdateNeverStopsInsideACompactionHole() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            let writer = try SharedCache(statePath: directory + "/writer", datastore: store)
            let start = try await writer.set(bytes("0"), forKey: bytes("other"))
            var configuration = SharedCache.Configuration()
            configuration.maximumOperationsPerTransaction = 1
            let reader = try SharedCache(statePath: directory + "/reader", datastore: store, configuration: configuration)
            try await reader.update()
            #expect(try reader.updateID() == start)

            let old = try await writer.set(bytes("old"), forKey: bytes("k"))
            for index in 0..<5 { try await writer.set(bytes("\(index)"), forKey: bytes("j\(index)")) }
            let replacement = try await writer.set(bytes("new"), forKey: bytes("k"))
            let tail = try await writer.set(bytes("t"), forKey: bytes("tail"))

            let summary = try await reader.update(through: old + 1)
            #expect(summary.updateID == tail)
            #expect(summary.transactionsCommitted == 1)
            #expect(try reader.value(forKey: bytes("k")) == bytes("new"))
            #expect(replacement < tail)
            try CacheFixture.expectContents(reader, equal: try CacheFixture.contents(writer))
        }
    }

    /// Compaction can be turned off: then every record stays.
    @Test func compactionCanBeTurnedOff() async throws {
        let store = try await MySQLTestServer.makeStore { $0.compactsSingleKeyRecords = false }
        let payload = try LogRecord([.set(key: bytes("k"), value: bytes("v"))]).encoded()
        for _ in 0..<10 { _ = try await store.append(payload) }
        var count = 0
        for try await _ in store.records(after: 0) { count += 1 }
        #expect(count == 10)
    }

    /// A damaged row is a typed error naming the record, never skipped, and
    /// a cache reading it keeps its state and stops before it.
    @Test func aCorruptRowIsATypedError() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            let first = try await cache.set(bytes("one"), forKey: bytes("k1"))
            let second = try await store.append(try LogRecord([.set(key: bytes("k2"), value: bytes("two"))]).encoded())
            _ = try MySQLTestServer.sql("UPDATE \(configuration.table.name) SET bytes = CONCAT(bytes, 'x') WHERE update_id = \(second)")
            let error = await caughtDatastoreError { _ = try await store.readRecords(after: first, through: nil, limits: .default) }
            guard case .corruptRecord(_, let updateID, _) = error else {
                Issue.record("expected corruptRecord, got \(String(describing: error))")
                return
            }
            #expect(updateID == second)
            let reader = try SharedCache(statePath: directory + "/reader", datastore: store)
            await #expect(throws: CacheError.self) { try await reader.update() }
            #expect(try reader.updateID() == first)
            #expect(try reader.value(forKey: bytes("k1")) == bytes("one"))
        }
    }

    /// The record a machine applied last is replaced in the table by another
    /// valid record under the same id (a log changed under the machine):
    /// the machine's next update sees the difference in the checksum read
    /// with the page and rebuilds from the log instead of keeping a value
    /// the log no longer has.
    @Test func aMachineWhoseLastRecordChangedInTheTableRebuilds() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            let machine = try SharedCache(statePath: directory + "/state", datastore: store)
            _ = try await machine.set(bytes("one"), forKey: bytes("k1"))
            let second = try await machine.set(bytes("two"), forKey: bytes("k2"))
            let replacement = try LogRecord([.set(key: bytes("k2"), value: bytes("changed"))]).encoded()
            let hex = replacement.map { String(format: "%02x", $0) }.joined()
            _ = try MySQLTestServer.sql(
                "UPDATE \(configuration.table.name) SET bytes = X'\(hex)', payload_size = \(replacement.count), "
                    + "checksum = \(CRC32C.checksum(replacement)) WHERE update_id = \(second) AND part = 0")
            let other = try await store.append(try LogRecord([.set(key: bytes("k3"), value: bytes("three"))]).encoded())
            // A new process of the machine: a fresh datastore object.
            let later = try MySQLDatastore(configuration: configuration)
            let restarted = try SharedCache(statePath: directory + "/state", datastore: later)
            #expect(try await restarted.update().updateID == other)
            #expect(try restarted.value(forKey: bytes("k2")) == bytes("changed"))
            #expect(try restarted.value(forKey: bytes("k3")) == bytes("three"))
            await later.close()
        }
        await store.close()
    }

    /// Payloads larger than a 1 MiB part are split over rows and come back whole.
    @Test func largePayloadsAreStoredInParts() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        let payload = (0..<(5 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let id = try await store.append(payload)
        #expect(try MySQLTestServer.sql("SELECT COUNT(*) FROM \(configuration.table.name) WHERE update_id = \(id)") == "6")
        #expect(try await store.readRecords(after: 0, through: nil, limits: .default).map(\.payload) == [payload])
    }

    /// Wrong credentials are `accessDenied`, and no message holds the password.
    @Test func aWrongPasswordIsAccessDenied() async throws {
        var configuration = try MySQLTestServer.configuration()
        configuration.password = "not-the-password-8472"
        let store = try MySQLDatastore(configuration: configuration)
        let error = await caughtDatastoreError { _ = try await store.latestUpdateID() }
        guard case .accessDenied(let reason) = error else {
            Issue.record("expected accessDenied, got \(String(describing: error))")
            return
        }
        #expect(reason.contains(configuration.user))
        #expect(!String(describing: error).contains(configuration.password))
        #expect(!reason.contains(configuration.password))
        #expect(!configuration.description.contains(configuration.password))
    }

    /// An unknown database is a configuration error that names it. (The test
    /// user may use every database named `whycache_*`; for a database the
    /// user has no rights on, the server answers "access denied" instead.)
    @Test func anUnknownDatabaseIsAConfigurationError() async throws {
        var configuration = try MySQLTestServer.configuration()
        configuration.database = "whycache_no_such_database"
        let store = try MySQLDatastore(configuration: configuration)
        let error = await caughtDatastoreError { try await store.createIfMissing() }
        guard case .invalidConfiguration(let reason) = error else {
            Issue.record("expected invalidConfiguration, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("whycache_no_such_database"))
    }

    /// Tables that were never created are `notADatastore`, and nothing is
    /// created implicitly.
    @Test func missingTablesAreNotADatastore() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        for attempt in 0..<2 {
            let error = await caughtDatastoreError {
                _ = attempt == 0 ? try await store.latestUpdateID() : try await store.append(Array("x".utf8))
            }
            guard case .notADatastore = error else {
                Issue.record("expected notADatastore, got \(String(describing: error))")
                continue
            }
        }
        #expect(try MySQLTestServer.sql("SHOW TABLES LIKE '\(configuration.table.name)%'").isEmpty)
    }

    /// Required TLS is never silently dropped: the test server has no TLS, so
    /// both TLS modes refuse to connect with a configuration error.
    @Test func requiredTLSIsNeverDroppedSilently() async throws {
        for tls in [MySQLTLSConfiguration(mode: .required), .verifyServer()] {
            var configuration = try MySQLTestServer.configuration()
            configuration.tls = tls
            let store = try MySQLDatastore(configuration: configuration)
            let error = await caughtDatastoreError { _ = try await store.latestUpdateID() }
            guard case .invalidConfiguration(let reason) = error else {
                Issue.record("expected invalidConfiguration for \(tls.mode), got \(String(describing: error))")
                continue
            }
            #expect(reason.contains("TLS"))
        }
    }

    /// After `close()`, every call fails with `invalidRequest`; appends that
    /// were running finish first; closing twice does nothing.
    @Test func closeEndsTheDatastore() async throws {
        let store = try await MySQLTestServer.makeStore()
        let running = (0..<8).map { index in Task { try await store.append(Array("before close \(index)".utf8)) } }
        var ids: [UInt64] = []
        for task in running { ids.append(try await task.value) }
        await store.close()
        await store.close()
        for attempt in 0..<3 {
            let error = await caughtDatastoreError {
                switch attempt {
                case 0: _ = try await store.latestUpdateID()
                case 1: _ = try await store.append(Array("after".utf8))
                default: _ = try await store.acquireMaintenanceLock()
                }
            }
            guard case .invalidRequest = error else {
                Issue.record("expected invalidRequest, got \(String(describing: error))")
                continue
            }
        }
        let reopened = try MySQLDatastore(configuration: store.configuration)
        #expect(try await reopened.latestUpdateID() == ids.max())
    }

    /// Table names are identifiers, never arbitrary SQL.
    @Test func tableNamesAreValidated() throws {
        for bad in ["", "1abc", "a-b", "a b", "x`; DROP TABLE y; --", String(repeating: "a", count: 41), "ä"] {
            #expect(throws: DatastoreError.self) { _ = try MySQLIdentifier(bad) }
        }
        for good in ["whycache_log", "_x", "Log2", String(repeating: "a", count: 40)] {
            #expect(try MySQLIdentifier(good).name == good)
        }
    }

    /// Unusable settings are refused before anything connects.
    @Test func configurationIsValidated() throws {
        let base = try MySQLTestServer.configuration()
        let changes: [(inout MySQLConfiguration) -> Void] = [
            { $0.poolSize = 0 },
            { $0.maximumConcurrentAppends = $0.poolSize + 1 },
            { $0.appendGatherWait = .microseconds(-1) },
            { $0.appendGatherWait = .milliseconds(1_001) },
            { $0.endpoint = .tcp(host: "", port: 3306) },
            { $0.endpoint = .tcp(host: "h", port: 70_000) },
            { $0.user = "" },
            { $0.readTimeout = .zero },
            { $0.tls = MySQLTLSConfiguration(mode: .disabled, certificateAuthorityPath: "/ca.pem") },
            { $0.tls = MySQLTLSConfiguration(mode: .required, clientCertificatePath: "/c.pem") },
        ]
        for index in changes.indices {
            var configuration = base
            changes[index](&configuration)
            #expect(throws: DatastoreError.self) { _ = try MySQLDatastore(configuration: configuration) }
        }
    }

    /// `Schema/whycache_log.sql` is exactly what the library creates.
    @Test func theSchemaFileMatchesTheLibrary() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("Schema/whycache_log.sql"), encoding: .utf8)
        #expect(file == MySQLDatastore.schemaScript(table: try MySQLIdentifier("whycache_log")))
    }

    /// The created tables are what `docs/FORMAT.md` §4 describes.
    @Test func createIfMissingCreatesTheFourTables() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await store.createIfMissing()
        let tables = try MySQLTestServer.sql("SHOW TABLES LIKE '\(configuration.table.name)%'").split(separator: "\n").map(String.init).sorted()
        let name = configuration.table.name
        #expect(tables == [name, name + "_checkpoint_payloads", name + "_checkpoints", name + "_meta"])
        #expect(try MySQLTestServer.sql("SELECT format_version, last_update_id, removed_through FROM \(name)_meta") == "1\t0\t0")
    }
}

/// How many appends returned, shared with the tasks that append.
private final class AppendCounter: Sendable {
    let count = Atomic<Int>(0)
}
