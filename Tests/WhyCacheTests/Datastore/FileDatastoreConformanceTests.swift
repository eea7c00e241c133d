import Foundation
import Testing
import WhyCache

/// ``FileDatastore`` runs the shared datastore conformance checks, with small
/// segments so that every check also crosses segment boundaries.
@Suite struct FileDatastoreConformanceTests {
    private func check(_ body: (DatastoreConformance) async throws -> Void) async throws {
        try await withTemporaryDirectory { root in
            let conformance = DatastoreConformance {
                let options = FileDatastoreOptions(syncPolicy: .never, segmentSize: 4_096, readChunkSize: 4_096)
                let store = try FileDatastore(directory: root + "/" + UUID().uuidString, options: options)
                try await store.createIfMissing()
                return store
            }
            try await body(conformance)
        }
    }

    @Test func emptyLog() async throws { try await check { try await $0.emptyLog() } }
    @Test func createIfMissingIsIdempotent() async throws { try await check { try await $0.createIfMissingIsIdempotent() } }
    @Test func appendReturnsIncreasingIDs() async throws { try await check { try await $0.appendReturnsIncreasingIDs() } }
    @Test func readRanges() async throws { try await check { try await $0.readRanges() } }
    @Test func streamingSpansManyPages() async throws { try await check { try await $0.streamingSpansManyPages() } }
    @Test func batchAppend() async throws { try await check { try await $0.batchAppend() } }
    @Test func largePayloads() async throws { try await check { try await $0.largePayloads() } }
    @Test func checkpointPublishAndRead() async throws { try await check { try await $0.checkpointPublishAndRead() } }
    @Test func checkpointAbandon() async throws { try await check { try await $0.checkpointAbandon() } }
    @Test func checkpointBounds() async throws { try await check { try await $0.checkpointBounds() } }
    @Test func removeRecordsRequiresCheckpoint() async throws { try await check { try await $0.removeRecordsRequiresCheckpoint() } }
    @Test func removeRecordsRewritesHistory() async throws { try await check { try await $0.removeRecordsRewritesHistory() } }
    @Test func removeCheckpoints() async throws { try await check { try await $0.removeCheckpoints() } }
    @Test func maintenanceLockIsExclusive() async throws { try await check { try await $0.maintenanceLockIsExclusive() } }
    @Test func concurrentAppends() async throws { try await check { try await $0.concurrentAppends() } }

    /// The default options (64 MiB segments, `fdatasync` on every append) pass too.
    @Test func allChecksWithDefaultOptions() async throws {
        try await withTemporaryDirectory { root in
            let conformance = DatastoreConformance {
                let store = try FileDatastore(directory: root + "/" + UUID().uuidString)
                try await store.createIfMissing()
                return store
            }
            try await conformance.runAll()
        }
    }
}
