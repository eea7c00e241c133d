import Foundation
import Testing
import WhyCache

/// Findings of the `log-replay` fuzz target (docs/RELIABILITY.md, "Fuzzing"):
/// the `datastore.meta` file of a file datastore (docs/FORMAT.md §3.4).
@Suite struct DatastoreMetadataDamageTests {
    /// A valid `datastore.meta` whose removedThrough is `value`.
    static func metadata(removedThrough value: UInt64) -> [UInt8] {
        var bytes = Array("WCLOGDIR".utf8)
        bytes += withUnsafeBytes(of: UInt32(1).littleEndian) { Array($0) } + [0, 0, 0, 0]
        bytes += withUnsafeBytes(of: value.littleEndian) { Array($0) }
        bytes += withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { Array($0) } + [0, 0, 0, 0]
        return bytes
    }

    /// A metadata file saying that history was removed through the largest
    /// id made every reader trap computing the first retained id (that id
    /// plus one). No log can get there — its last segment, and so its newest
    /// id, is never removed — so the file is refused as invalid.
    @Test func historyRemovedThroughTheLargestIDIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
            try await store.createIfMissing()
            _ = try await store.append(try LogRecord([.set(key: Array("k".utf8), value: [])]).encoded())
            try Data(Self.metadata(removedThrough: .max)).write(to: URL(fileURLWithPath: directory + "/datastore.meta"))

            let reader = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
            func isInvalidMetadata(_ error: any Error) -> Bool {
                guard case DatastoreError.notADatastore(_, let reason) = error else { return false }
                return reason.contains("datastore.meta is invalid")
            }
            await #expect(performing: { try await reader.firstRetainedUpdateID() }, throws: isInvalidMetadata)
            await #expect(performing: { try await reader.readRecords(after: 0, through: nil, limits: .default) }, throws: isInvalidMetadata)
        }
    }
}
