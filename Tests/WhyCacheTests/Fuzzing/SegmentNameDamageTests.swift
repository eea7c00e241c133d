import Foundation
import Testing
import WhyCache

/// Findings of the `log-replay` and `checkpoint-replay` fuzz targets
/// (docs/RELIABILITY.md, "Fuzzing"): segment files whose names (and headers)
/// put their ids at the ends of the id space (docs/FORMAT.md §3.5).
@Suite struct SegmentNameDamageTests {
    /// A segment file's 32-byte header (docs/FORMAT.md §3.3) for first id `first`.
    static func segmentHeader(_ first: UInt64) -> [UInt8] {
        var bytes = Array("WCLOGSEG".utf8)
        bytes += withUnsafeBytes(of: UInt32(1).littleEndian) { Array($0) } + [0, 0, 0, 0]
        bytes += withUnsafeBytes(of: first.littleEndian) { Array($0) }
        bytes += withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { Array($0) } + [0, 0, 0, 0]
        return bytes
    }

    /// The frame (docs/FORMAT.md §3.5) of `payload` with id `updateID`.
    static func frame(_ updateID: UInt64, _ payload: [UInt8]) -> [UInt8] {
        var bytes = withUnsafeBytes(of: UInt32(payload.count).littleEndian) { Array($0) }
        bytes += withUnsafeBytes(of: updateID.littleEndian) { Array($0) }
        bytes += withUnsafeBytes(of: CRC32C.checksum(payload).littleEndian) { Array($0) }
        bytes += withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { Array($0) }
        return bytes + payload
    }

    /// The path of the segment whose first id is `first` in `directory`.
    static func segmentPath(_ directory: String, _ first: UInt64) -> String {
        let digits = String(first)
        return "\(directory)/segment-\(String(repeating: "0", count: 20 - digits.count) + digits).log"
    }

    /// A datastore in `directory` whose only segment starts at `first` and
    /// holds the frames `ids` (each a one-key record), replacing segment 1.
    static func makeLog(in directory: String, first: UInt64, ids: [UInt64]) async throws -> FileDatastore {
        let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
        try await store.createIfMissing()
        try FileManager.default.removeItem(atPath: segmentPath(directory, 1))
        let record = try LogRecord([.set(key: Array("k".utf8), value: Array("v".utf8))]).encoded()
        let bytes = segmentHeader(first) + ids.flatMap { frame($0, record) }
        try Data(bytes).write(to: URL(fileURLWithPath: segmentPath(directory, first)))
        return try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
    }

    static func isCorruptRecord(_ error: any Error) -> Bool {
        if case DatastoreError.corruptRecord = error { return true }
        return false
    }

    /// A segment named 0 (ids start at 1) made the end of the log "id 0 − 1":
    /// finding the newest id trapped. The segment is reported as corrupt.
    @Test func aSegmentStartingAtZeroIsCorrupt() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Self.makeLog(in: directory, first: 0, ids: [])
            await #expect(performing: { try await store.latestUpdateID() }, throws: Self.isCorruptRecord)
        }
    }

    /// A valid frame carrying the largest id, 2^64 − 1, made the reader trap
    /// computing the id after it. Such a frame is corrupt: it leaves no id
    /// for the record after it.
    @Test func aFrameCarryingTheLargestIDIsCorrupt() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Self.makeLog(in: directory, first: .max - 1, ids: [.max - 1, .max])
            await #expect(performing: { try await store.latestUpdateID() }, throws: Self.isCorruptRecord)
            await #expect(performing: { try await store.readRecords(after: .max - 2, through: nil, limits: .default) }, throws: Self.isCorruptRecord)
        }
    }

    /// A checkpoint file at the largest id (its name and its header agreeing)
    /// made a cache rebuilding from it trap on "the id after the checkpoint".
    /// No record can follow such a checkpoint, so only damage names it: the
    /// datastore reports it as corrupt, and the cache's update fails with
    /// that error, its state untouched.
    @Test func aCheckpointAtTheLargestIDIsCorrupt() async throws {
        try await withTemporaryDirectory { directory in
            // The log starts at 5: a new machine needs a checkpoint to begin.
            let store = try await Self.makeLog(in: directory, first: 5, ids: [5])
            let checkpoint = Array("WCCHKPNT".utf8) + withUnsafeBytes(of: UInt32(1).littleEndian) { Array($0) } + [0, 0, 0, 0]
                + withUnsafeBytes(of: UInt64.max.littleEndian) { Array($0) }
            var footer = Array("WCCKPEND".utf8) + [UInt8](repeating: 0, count: 16)
            footer += withUnsafeBytes(of: CRC32C.checksum(footer).littleEndian) { Array($0) } + [0, 0, 0, 0]
            let header = checkpoint + withUnsafeBytes(of: CRC32C.checksum(checkpoint).littleEndian) { Array($0) } + [0, 0, 0, 0]
            try Data(header + footer).write(to: URL(fileURLWithPath: "\(directory)/checkpoint-\(UInt64.max).ckpt"))
            await #expect(performing: { try await store.latestCheckpoint() }, throws: Self.isCorruptRecord)

            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            defer { cache.close() }
            await #expect(performing: { try await cache.update() }, throws: { error in
                if case CacheError.datastore(.corruptRecord) = error { return true }
                return false
            })
        }
    }

    /// Appending more records than ids are left trapped computing their ids;
    /// it is refused before anything is written, and what fits is accepted.
    @Test func appendsBeyondTheLastIDAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Self.makeLog(in: directory, first: .max - 2, ids: [])
            let record = try LogRecord([.set(key: Array("k".utf8), value: [])]).encoded()
            await #expect(performing: { try await store.append(contentsOf: [record, record, record]) }, throws: { error in
                if case DatastoreError.invalidRequest = error { return true }
                return false
            })
            #expect(try await store.append(contentsOf: [record, record]) == [.max - 2, .max - 1])
            #expect(try await store.latestUpdateID() == .max - 1)
        }
    }
}
