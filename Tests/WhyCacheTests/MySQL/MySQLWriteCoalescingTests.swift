import Testing
import WhyCache
import WhyCacheMySQL

/// Write coalescing over MySQL (single-key compaction on): the checks of
/// `WriteCoalescingTests`, each on a table of its own.
@Suite struct MySQLWriteCoalescingTests {
    @Test func concurrentWritersLoseNothingAndKeepTheirOrder() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            try await WriteCoalescingTests.concurrentWritersLoseNothingAndKeepTheirOrder(store: store, directory: directory)
        }
        await store.close()
    }

    @Test func aFailedAppendFailsEveryWriteGatheredInItAndTheNextAppendWorks() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            try await WriteCoalescingTests.aFailedAppendFailsEveryWriteGatheredInIt(store: store, directory: directory)
        }
        await store.close()
    }

    @Test func aFailedApplyReportsEveryWriteAsWrittenWithItsOwnID() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            try await WriteCoalescingTests.aFailedApplyReportsEveryWriteAsWritten(store: store, directory: directory)
        }
        await store.close()
    }
}
