import Foundation
import Testing
import WhyCache
@testable import WhyCacheMySQL

/// The append in one request (docs/FORMAT.md §4.3): what it costs, what a
/// failure in the middle of it leaves behind, and tables that the previous
/// version created and filled.
@Suite struct MySQLAppendRequestTests {
    /// A single-key set through a cache is one request to the server — one
    /// call of the append procedure — and the cache applies the new record
    /// without reading it back.
    @Test func aSetThroughACacheIsOneRequest() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            try await cache.update()
            for index in 0..<20 {
                let before = store.statistics()
                let id = try await cache.set(bytes("v\(index)"), forKey: bytes("k\(index % 3)"))
                let after = store.statistics()
                #expect(after.primaryRequests - before.primaryRequests == 1, "set \(index)")
                #expect(after.primaryStatements - before.primaryStatements == 1, "set \(index)")
                #expect(try cache.updateID() == id)
                #expect(try cache.value(forKey: bytes("k\(index % 3)")) == bytes("v\(index)"))
            }
            // Compaction kept one record per key.
            #expect(try MySQLTestServer.sql("SELECT COUNT(*) FROM \(store.configuration.table.name) WHERE part = 0") == "3")
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            try CacheFixture.expectContents(fresh, equal: try CacheFixture.contents(cache))
        }
    }

    /// An append of several records is one multi-statement request: the
    /// transaction's five statements. A single-key record that a later one
    /// of the same append replaces is never inserted (its id is a hole), and
    /// the page read after it is answered from the append.
    @Test func anAppendOfSeveralRecordsIsOneRequest() async throws {
        let store = try await MySQLTestServer.makeStore()
        let payloads = try [("a", "1"), ("b", "1"), ("a", "2")].map { key, value in
            try LogRecord([.set(key: bytes(key), value: bytes(value))]).encoded()
        }
        let before = store.statistics()
        #expect(try await store.append(contentsOf: payloads) == [1, 2, 3])
        let after = store.statistics()
        #expect(after.primaryRequests - before.primaryRequests == 1)
        // START TRANSACTION, the counter, the rows, the compaction, COMMIT.
        #expect(after.primaryStatements - before.primaryStatements == 5)
        let page = try await store.readPage(after: 0, through: nil, limits: .default)
        #expect(store.statistics().primaryRequests == after.primaryRequests, "the page after the append came from the append")
        #expect(page.entries.map(\.updateID) == [2, 3])
        #expect(page.reachesEnd && page.newestUpdateID == 3)
        #expect(try await store.readRecords(after: 0, through: nil, limits: .default) == page.entries)
    }

    /// Two processes write in turn. A writer's read after its append cannot
    /// be answered by its own appends when the other's record lies in
    /// between: that read goes to the server once, and from then on the
    /// writer's appends read the page after its position in the same round
    /// trip. Every state stays exact.
    @Test func aWriterBesideOtherWritersReadsTheirRecordsInTheSameRoundTrip() async throws {
        let configuration = try MySQLTestServer.configuration()
        let first = try MySQLDatastore(configuration: configuration)
        try await first.createIfMissing()
        let second = try MySQLDatastore(configuration: configuration)
        try await withTemporaryDirectory { directory in
            let mine = try SharedCache(statePath: directory + "/mine", datastore: first)
            let theirs = try SharedCache(statePath: directory + "/theirs", datastore: second)
            try await mine.update()
            var requests: [UInt64] = []
            for round in 0..<6 {
                try await theirs.set(bytes("t\(round)"), forKey: bytes("theirs-\(round)"))
                let before = first.statistics().primaryRequests
                let id = try await mine.set(bytes("m\(round)"), forKey: bytes("mine-\(round)"))
                requests.append(first.statistics().primaryRequests - before)
                #expect(try mine.updateID() == id)
                #expect(try mine.value(forKey: bytes("theirs-\(round)")) == bytes("t\(round)"))
            }
            // The first set after the other's write read the server; the
            // following ones carried the read.
            #expect(requests.first == 2)
            #expect(requests.dropFirst().allSatisfy { $0 == 1 }, "\(requests)")
            try await theirs.update()
            try CacheFixture.expectContents(mine, equal: try CacheFixture.contents(theirs))
        }
    }

    /// A statement in the middle of the append fails (the log table is
    /// gone, after the counter row was advanced) — inside the append
    /// procedure (one record) or in a multi-statement request (three): the
    /// error is typed, the counter is not advanced, nothing holds its lock,
    /// and the connection goes back to the pool without a transaction — had
    /// it kept one, the next append's `START TRANSACTION` would have
    /// committed the advance and skipped an id.
    @Test(arguments: [1, 3])
    func anAppendThatFailsMidwayRollsBackAndLeavesNoTransactionOpen(records: Int) async throws {
        let store = try await MySQLTestServer.makeStore {
            $0.poolSize = 1
            $0.maximumConcurrentAppends = 1
        }
        let table = store.configuration.table.name
        func payloads(_ tag: String) throws -> [[UInt8]] {
            try (0..<records).map { try LogRecord([.set(key: bytes("\(tag)\($0)"), value: bytes(tag))]).encoded() }
        }
        let written = try await store.append(contentsOf: try payloads("a"))
        #expect(written.last == UInt64(records))
        _ = try MySQLTestServer.sql("DROP TABLE \(table)")
        let error = await caughtDatastoreError { _ = try await store.append(contentsOf: try payloads("b")) }
        guard case .notADatastore = error else {
            Issue.record("expected notADatastore, got \(String(describing: error))")
            return
        }
        // NOWAIT fails at once if any transaction still holds the counter row.
        let counter = try MySQLTestServer.sql(
            "START TRANSACTION; SELECT last_update_id FROM \(table)_meta WHERE id = 1 FOR UPDATE NOWAIT; ROLLBACK")
        #expect(counter == "\(records)")
        try await store.createIfMissing()
        let next = try await store.append(contentsOf: try payloads("c"))
        #expect(next.first == UInt64(records + 1))
        #expect(try await store.readRecords(after: UInt64(records), through: nil, limits: .default).map(\.updateID) == next)
    }

    /// The counter row disappears between two appends on one connection,
    /// whose `LAST_INSERT_ID()` still holds the first append's last id: the
    /// second append (one record through the procedure, or three in a
    /// request) is `notADatastore` and writes nothing — no row under an id
    /// the counter did not hand out, no deletion.
    @Test(arguments: [1, 3])
    func anAppendWithoutItsCounterRowWritesNothing(records: Int) async throws {
        let store = try await MySQLTestServer.makeStore {
            $0.poolSize = 1
            $0.maximumConcurrentAppends = 1
        }
        let table = store.configuration.table.name
        func payloads(_ tag: String) throws -> [[UInt8]] {
            // The same keys each time: compaction would delete the older records.
            try (0..<records).map { try LogRecord([.set(key: bytes("k\($0)"), value: bytes(tag))]).encoded() }
        }
        _ = try await store.append(contentsOf: try payloads("a"))
        _ = try await store.append(contentsOf: try payloads("b"))
        let rows = try MySQLTestServer.sql("SELECT update_id FROM \(table) ORDER BY update_id")
        _ = try MySQLTestServer.sql("DELETE FROM \(table)_meta")
        let error = await caughtDatastoreError { _ = try await store.append(contentsOf: try payloads("c")) }
        guard case .notADatastore = error else {
            Issue.record("expected notADatastore, got \(String(describing: error))")
            return
        }
        #expect(try MySQLTestServer.sql("SELECT update_id FROM \(table) ORDER BY update_id") == rows)
    }

    /// The callers of a transaction of several appends come back with their
    /// next appends only after it returned; the worker waits for them
    /// (``MySQLConfiguration/appendGatherWait``) and sends them in one
    /// transaction, instead of leaving with the first of them alone.
    ///
    /// Two other connections hold the counter row and an old record's row:
    /// the first append (of two keys: it deletes nothing) waits on the
    /// counter row while three more queue behind it; those three make the
    /// next transaction, which waits (2 s, longer than the gather wait) to
    /// delete the old record of its key while a fourth append queues.
    @Test func theCallersOfATransactionShareTheNextOne() async throws {
        // Everything the test's timing depends on runs on a thread of its own,
        // not on the cooperative pool that other tests may hold for minutes
        // on 2 cores: the writers must come back with their second appends
        // within the gather wait, and the test must look at the appender
        // while the rows it holds keep a transaction waiting (the server
        // gives up on a lock after innodb_lock_wait_timeout, 50 s).
        let executor = ThreadTaskExecutor(name: "theCallersOfATransactionShareTheNextOne")
        try await withTaskExecutorPreference(executor) { () async throws in
            try await callersOfATransactionShareTheNextOne(on: executor)
        }
    }

    private func callersOfATransactionShareTheNextOne(on executor: ThreadTaskExecutor) async throws {
        // The appends wait on rows this test holds for as long as its task
        // takes, which on a loaded 2-core machine can exceed the default 30 s
        // read timeout (they then failed with "lost connection", error 2013).
        let store = try await MySQLTestServer.makeStore {
            $0.appendGatherWait = .seconds(1)
            $0.readTimeout = .seconds(300)
        }
        let table = store.configuration.table.name
        @Sendable func record(_ key: String) throws -> [UInt8] {
            try LogRecord([.set(key: bytes(key), value: bytes("v"))]).encoded()
        }
        #expect(try await store.append(record("shared")) == 1)
        let counterHolder = try await MySQLConnection.open(store.configuration, traffic: MySQLTraffic())
        let rowHolder = try await MySQLConnection.open(store.configuration, traffic: MySQLTraffic())
        for (holder, lock) in [(counterHolder, "\(table)_meta WHERE id = 1"), (rowHolder, "\(table) WHERE update_id = 1")] {
            try await holder.run { connection throws(MySQLClientError) in
                try connection.execute("START TRANSACTION")
                try connection.execute("SELECT 1 FROM \(lock) FOR UPDATE")
            }
        }
        // Of two keys, so that its transaction deletes nothing and waits only for the counter row.
        let twoKeys = try LogRecord([.set(key: bytes("first"), value: bytes("v")), .set(key: bytes("second"), value: bytes("v"))]).encoded()
        // A worker takes an append off the queue before it sends it: the
        // requests are counted from the moment the first one was sent (a
        // request is counted as it is sent), or a slow worker's would count
        // among those of the next two transactions.
        let requestsBeforeTheFirst = store.statistics().primaryRequests
        let first = Task(executorPreference: executor) { try await store.append(twoKeys) }
        try await WriteCoalescingTests.waitUntil("the first append's transaction waits for the counter row") {
            store.appender.queue == (appends: 0, workers: 1) && store.statistics().primaryRequests == requestsBeforeTheFirst + 1
        }
        let writers = ["shared", "c", "d"].map { key in
            Task(executorPreference: executor) { [try await store.append(record(key)), try await store.append(record(key + "/2"))] }
        }
        try await WriteCoalescingTests.waitUntil("three appends queue behind it") { store.appender.queue.appends == 3 }
        let requestsBefore = store.statistics().primaryRequests
        try await counterHolder.run { connection throws(MySQLClientError) in try connection.execute("COMMIT") }
        #expect(try await first.value == 2)
        // While their transaction waits, one more append queues: without the
        // gather wait the next transaction would leave with it alone.
        // (Sent, so that it waits at the server for the 2 s below, longer
        // than the gather wait: the worker then waits the full gather wait.)
        try await WriteCoalescingTests.waitUntil("their transaction waits for the old record's row") {
            store.appender.queue == (appends: 0, workers: 1) && store.statistics().primaryRequests == requestsBefore + 1
        }
        let late = Task(executorPreference: executor) { try await store.append(record("late")) }
        try await WriteCoalescingTests.waitUntil("the late append queues") { store.appender.queue.appends == 1 }
        try await Task.sleep(for: .seconds(2))
        try await rowHolder.run { connection throws(MySQLClientError) in try connection.execute("COMMIT") }
        var ids: [[UInt64]] = []
        for writer in writers { ids.append(try await writer.value) }
        // One transaction of the three first appends, one of the late append
        // and the three second ones.
        #expect(Set(ids.map { $0[0] }) == [3, 4, 5])
        #expect(Set(ids.map { $0[1] } + [try await late.value]) == [6, 7, 8, 9])
        #expect(store.statistics().primaryRequests - requestsBefore == 2)
        await counterHolder.close()
        await rowHolder.close()
    }

    /// Tables created and filled by the previous version — created from its
    /// schema script (this one without the append procedure), written with
    /// one statement per step — take appends in one request at once, and in
    /// one call of the procedure once `createIfMissing()` added it (which
    /// changes nothing in the tables): ids go on from the old ones, a new
    /// single-key record replaces an old one of its key, the old multi-key
    /// record stays, and a machine replaying the log ends with every write.
    @Test func tablesOfThePreviousVersionTakeAppendsInOneRequest() async throws {
        let configuration = try MySQLTestServer.configuration()
        let table = configuration.table.name
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let script = try String(contentsOf: root.appendingPathComponent("Schema/whycache_log.sql"), encoding: .utf8)
        guard let procedure = script.range(of: "-- The append of one record in one call") else {
            Issue.record("the schema script has no append procedure")
            return
        }
        let previous = String(script[..<procedure.lowerBound])
        _ = try MySQLTestServer.sql(previous.replacingOccurrences(of: "`whycache_log", with: "`\(table)"))
        let definitions = try Self.tableDefinitions(table)

        // The previous version's append: statements in a transaction.
        let log = MySQLLogTable(schema: MySQLSchema(table: configuration.table), location: configuration.location, compactsSingleKeyRecords: true)
        let payloads = [
            try LogRecord([.set(key: bytes("k"), value: bytes("old"))]).encoded(),
            try LogRecord([.set(key: bytes("m1"), value: bytes("x")), .set(key: bytes("m2"), value: bytes("y"))]).encoded(),
            try LogRecord([.set(key: bytes("other"), value: bytes("o"))]).encoded(),
        ]
        let connection = try await MySQLConnection.open(configuration, traffic: MySQLTraffic())
        let old = try await connection.run { connection throws(MySQLTransactionError) -> [UInt64] in
            try connection.transaction { () throws(MySQLWorkError) -> [UInt64] in try log.append(payloads, on: connection) }
        }
        await connection.close()
        #expect(old == [1, 2, 3])

        try await withTemporaryDirectory { directory in
            // Without the procedure: a multi-statement request.
            let before = try MySQLDatastore(configuration: configuration)
            let early = try SharedCache(statePath: directory + "/early", datastore: before)
            #expect(try await early.update().updateID == 3)
            #expect(try await early.set(bytes("o2"), forKey: bytes("other")) == 4)
            #expect(try MySQLTestServer.sql("SHOW PROCEDURE STATUS WHERE Db = DATABASE() AND Name = '\(table)_append_v1'").isEmpty)

            let store = try MySQLDatastore(configuration: configuration)
            try await store.createIfMissing()
            #expect(try Self.tableDefinitions(table) == definitions)
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            #expect(try await cache.update().updateID == 4)
            let requests = store.statistics()
            let id = try await cache.set(bytes("new"), forKey: bytes("k"))
            #expect(store.statistics().primaryRequests - requests.primaryRequests == 1)
            #expect(store.statistics().primaryStatements - requests.primaryStatements == 1, "a call of the procedure")
            #expect(id == 5)
            #expect(try MySQLTestServer.sql("SELECT update_id FROM \(table) WHERE part = 0 ORDER BY update_id") == "2\n4\n5")
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            #expect(try fresh.updateID() == 5)
            for (key, value) in [("k", "new"), ("m1", "x"), ("m2", "y"), ("other", "o2")] {
                #expect(try fresh.value(forKey: bytes(key)) == bytes(value), "\(key)")
            }
        }
    }

    /// The schema script, run by an administrator through the `mariadb`
    /// client (its `DELIMITER` lines included), creates what
    /// `createIfMissing()` creates: a datastore on those tables appends a
    /// record with one call of the procedure.
    @Test func theSchemaScriptRunByHandCreatesTheProcedure() async throws {
        let configuration = try MySQLTestServer.configuration()
        let table = configuration.table.name
        _ = try MySQLTestServer.sql(MySQLDatastore.schemaScript(table: configuration.table))
        #expect(try MySQLTestServer.sql("SHOW PROCEDURE STATUS WHERE Db = DATABASE() AND Name = '\(table)_append_v1'").contains(table))
        let store = try MySQLDatastore(configuration: configuration)
        let before = store.statistics()
        #expect(try await store.append(try LogRecord([.set(key: bytes("k"), value: bytes("v"))]).encoded()) == 1)
        #expect(store.statistics().primaryStatements - before.primaryStatements == 1)
        #expect(try await store.readRecords(after: 0, through: nil, limits: .default).count == 1)
    }

    /// What `SHOW CREATE TABLE` says of each of the log's four tables.
    private static func tableDefinitions(_ table: String) throws -> [String] {
        try ["", "_meta", "_checkpoints", "_checkpoint_payloads"].map { suffix in
            try MySQLTestServer.sql("SHOW CREATE TABLE \(table)\(suffix)")
        }
    }
}
