import Testing
import WhyCache
import WhyCacheMySQL

/// ``MySQLDatastore`` runs the same datastore conformance checks as the file
/// datastore, against the real MariaDB server, each on tables of its own.
@Suite struct MySQLDatastoreConformanceTests {
    private let conformance = DatastoreConformance { try await MySQLTestServer.makeStore() }

    @Test func emptyLog() async throws { try await conformance.emptyLog() }
    @Test func createIfMissingIsIdempotent() async throws { try await conformance.createIfMissingIsIdempotent() }
    @Test func appendReturnsIncreasingIDs() async throws { try await conformance.appendReturnsIncreasingIDs() }
    @Test func readRanges() async throws { try await conformance.readRanges() }
    @Test func streamingSpansManyPages() async throws { try await conformance.streamingSpansManyPages() }
    @Test func batchAppend() async throws { try await conformance.batchAppend() }
    @Test func largePayloads() async throws { try await conformance.largePayloads() }
    @Test func checkpointPublishAndRead() async throws { try await conformance.checkpointPublishAndRead() }
    @Test func checkpointAbandon() async throws { try await conformance.checkpointAbandon() }
    @Test func checkpointBounds() async throws { try await conformance.checkpointBounds() }
    @Test func removeRecordsRequiresCheckpoint() async throws { try await conformance.removeRecordsRequiresCheckpoint() }
    @Test func removeRecordsRewritesHistory() async throws { try await conformance.removeRecordsRewritesHistory() }
    @Test func removeCheckpoints() async throws { try await conformance.removeCheckpoints() }
    @Test func maintenanceLockIsExclusive() async throws { try await conformance.maintenanceLockIsExclusive() }
    @Test func concurrentAppends() async throws { try await conformance.concurrentAppends() }
}
