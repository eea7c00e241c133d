import Testing
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
