import Foundation
import Testing
import WhyCache
@testable import WhyCacheMySQL

/// The append in one request (docs/FORMAT.md §4.3): what it costs, what a
/// failure in the middle of it leaves behind, and tables that the previous
/// version created and filled.
@Suite struct MySQLAppendRequestTests {
    /// A single-key set through a cache is one request to the server: the
    /// append's statements, its commit and the read of the new record that
    /// the cache applies all travel together.
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
                // START TRANSACTION, the counter, the row, the compaction, COMMIT, the page.
                #expect(after.primaryStatements - before.primaryStatements == 6, "set \(index)")
                #expect(try cache.updateID() == id)
                #expect(try cache.value(forKey: bytes("k\(index % 3)")) == bytes("v\(index)"))
            }
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            try CacheFixture.expectContents(fresh, equal: try CacheFixture.contents(cache))
        }
    }

    /// A statement in the middle of the request fails (the log table is
    /// gone, after the counter row was advanced): the error is typed, the
    /// counter is not advanced, nothing holds its lock, and the connection
    /// goes back to the pool without a transaction — had it kept one, the
    /// next append's `START TRANSACTION` would have committed the advance
    /// and skipped an id.
    @Test func anAppendThatFailsMidwayRollsBackAndLeavesNoTransactionOpen() async throws {
        let store = try await MySQLTestServer.makeStore {
            $0.poolSize = 1
            $0.maximumConcurrentAppends = 1
        }
        let table = store.configuration.table.name
        #expect(try await store.append(try LogRecord([.set(key: bytes("a"), value: bytes("1"))]).encoded()) == 1)
        _ = try MySQLTestServer.sql("DROP TABLE \(table)")
        let error = await caughtDatastoreError {
            _ = try await store.append(try LogRecord([.set(key: bytes("b"), value: bytes("2"))]).encoded())
        }
        guard case .notADatastore = error else {
            Issue.record("expected notADatastore, got \(String(describing: error))")
            return
        }
        // NOWAIT fails at once if any transaction still holds the counter row.
        let counter = try MySQLTestServer.sql(
            "START TRANSACTION; SELECT last_update_id FROM \(table)_meta WHERE id = 1 FOR UPDATE NOWAIT; ROLLBACK")
        #expect(counter == "1")
        try await store.createIfMissing()
        #expect(try await store.append(try LogRecord([.set(key: bytes("c"), value: bytes("3"))]).encoded()) == 2)
        #expect(try await store.readRecords(after: 1, through: nil, limits: .default).map(\.updateID) == [2])
    }

    /// Tables created and filled by the previous version — created from the
    /// schema script, written with one statement per step — take appends in
    /// one request after `createIfMissing()` (which changes nothing in
    /// them): ids go on from the old ones, a new single-key record replaces
    /// an old one of its key, the old multi-key record stays, and a machine
    /// replaying the log ends with every write.
    @Test func tablesOfThePreviousVersionTakeAppendsInOneRequest() async throws {
        let configuration = try MySQLTestServer.configuration()
        let table = configuration.table.name
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let script = try String(contentsOf: root.appendingPathComponent("Schema/whycache_log.sql"), encoding: .utf8)
        _ = try MySQLTestServer.sql(script.replacingOccurrences(of: "`whycache_log", with: "`\(table)"))
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

        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        #expect(try Self.tableDefinitions(table) == definitions)
        try await withTemporaryDirectory { directory in
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            #expect(try await cache.update().updateID == 3)
            let before = store.statistics().primaryRequests
            let id = try await cache.set(bytes("new"), forKey: bytes("k"))
            #expect(store.statistics().primaryRequests - before == 1)
            #expect(id == 4)
            #expect(try MySQLTestServer.sql("SELECT update_id FROM \(table) WHERE part = 0 ORDER BY update_id") == "2\n3\n4")
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            #expect(try fresh.updateID() == 4)
            for (key, value) in [("k", "new"), ("m1", "x"), ("m2", "y"), ("other", "o")] {
                #expect(try fresh.value(forKey: bytes(key)) == bytes(value), "\(key)")
            }
        }
    }

    /// What `SHOW CREATE TABLE` says of each of the log's four tables.
    private static func tableDefinitions(_ table: String) throws -> [String] {
        try ["", "_meta", "_checkpoints", "_checkpoint_payloads"].map { suffix in
            try MySQLTestServer.sql("SHOW CREATE TABLE \(table)\(suffix)")
        }
    }
}
