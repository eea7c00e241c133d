import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// The cache over MySQL across real processes.
@Suite(.serialized) struct MySQLProcessTests {
    /// 4 writer processes × 2,000 random sets and deletes against MySQL while
    /// 3 state files update concurrently; every state equals a fresh replay.
    @Test func writersAndMachinesConvergeOnAMySQLLog() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            try await SharedCacheProcessTests.writersAndMachinesConverge(
                store: store, storeSpec: "mysql:" + configuration.table.name, directory: directory)
        }
    }

    /// The same while `whycache-tool rewrite-history` runs over and over.
    @Test func writersAndMachinesConvergeWhileHistoryIsRewritten() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        let host = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST")
        let port = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT")
        let url = "mysql://\(configuration.user)@\(host):\(port)/\(configuration.database)?table=\(configuration.table.name)&connect-timeout=30"
        try await withTemporaryDirectory { directory in
            try await SharedCacheProcessTests.writersAndMachinesConverge(
                store: store, storeSpec: "mysql:" + configuration.table.name, directory: directory,
                rewriting: .init(arguments: ["--store", url], environment: ["WHYCACHE_MYSQL_PASSWORD": configuration.password]))
        }
    }

    /// Machines behind a history removal on MySQL rebuild from the checkpoint.
    @Test func machinesBehindTheRemovedHistoryRebuildFromTheCheckpoint() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            try await SharedCacheRebuildTests.machinesRebuild(store: store, directory: directory)
        }
    }

    /// Writer processes SIGKILLed at random moments while they append to
    /// MySQL: no acknowledged write is lost and every machine converges.
    @Test func writersKilledWhileAppendingLoseNothingTheyAcknowledged() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            try await SharedCacheProcessTests.writersKilledWhileAppending(
                store: store, storeSpec: "mysql:" + configuration.table.name, directory: directory)
        }
    }
}
