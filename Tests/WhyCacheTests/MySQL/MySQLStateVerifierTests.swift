import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// ``StateVerifier`` on MySQL, whose log compacts single-key records: the
/// same checks as on the file datastore.
@Suite struct MySQLStateVerifierTests {
    private func check(_ body: (StateVerifierChecks) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            try await body(StateVerifierChecks(directory: directory) { try await MySQLTestServer.makeStore() })
        }
    }

    @Test func aStateBuiltFromTheLogIsEqual() async throws { try await check { try await $0.aStateBuiltFromTheLogIsEqual() } }
    @Test func everyKindOfDifferenceIsFound() async throws { try await check { try await $0.everyKindOfDifferenceIsFound() } }
    @Test func aRewrittenLogIsVerifiedFromItsCheckpoint() async throws { try await check { try await $0.aRewrittenLogIsVerifiedFromItsCheckpoint() } }
}
