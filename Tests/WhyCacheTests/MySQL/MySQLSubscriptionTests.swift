import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// A subscribed cache on MySQL, whose log compacts single-key records and so
/// leaves holes in the ids: the same random workload as on the file datastore.
@Suite struct MySQLSubscriptionTests {
    @Test(arguments: [(UInt64(4), 1 << 20), (5, 3)])
    func aSubscribedCacheHoldsExactlyTheKeysUnderItsPrefixes(seed: UInt64, operationsPerTransaction: Int) async throws {
        try await withTemporaryDirectory { directory in
            try await SharedCacheSubscriptionTests.randomUpdates(
                store: try await MySQLTestServer.makeStore(), directory: directory, seed: seed,
                operationsPerTransaction: operationsPerTransaction)
        }
    }
}
