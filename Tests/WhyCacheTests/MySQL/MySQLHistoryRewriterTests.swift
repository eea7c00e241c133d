import Testing
import Foundation
import WhyCacheMySQL
import WhyCache

/// ``HistoryRewriter`` on MySQL: the same checks as on the file datastore.
@Suite struct MySQLHistoryRewriterTests {
    private func check(_ body: (HistoryRewriterChecks) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            try await body(HistoryRewriterChecks(directory: directory) { try await MySQLTestServer.makeStore() })
        }
    }

    @Test func machinesAtEveryPositionConverge() async throws { try await check { try await $0.machinesAtEveryPositionConverge() } }
    @Test func theFilterDropsKeysFromTheCheckpoint() async throws { try await check { try await $0.theFilterDropsKeysFromTheCheckpoint() } }
    @Test func oneRewriteAtATime() async throws { try await check { try await $0.oneRewriteAtATime() } }
    @Test func writersKeepAppendingDuringARewrite() async throws { try await check { try await $0.writersKeepAppendingDuringARewrite() } }
}

/// `whycache-tool rewrite-history` killed at each step, on MySQL.
@Suite(.serialized) struct MySQLHistoryRewriterCrashTests {
    @Test func aRewriteKilledAtAnyStepLeavesTheLogUsableAndARerunFinishes() async throws {
        let configuration = try MySQLTestServer.configuration()
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        try await withTemporaryDirectory { directory in
            let passwordFile = directory + "/password"
            try (try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PASSWORD")).write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let host = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST")
            let port = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT")
            let user = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_USER")
            let database = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_DATABASE")
            let options = [
                "--store", "mysql://\(user)@\(host):\(port)/\(database)?table=\(configuration.table.name)&connect-timeout=30",
                "--password-file", passwordFile,
            ]
            try await HistoryRewriterCrashTests.killRewrites(of: store, toolArguments: options, directory: directory)
        }
    }
}
