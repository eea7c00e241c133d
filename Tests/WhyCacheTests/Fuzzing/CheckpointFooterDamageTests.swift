import Foundation
import Testing
import WhyCache

/// A finding of the `checkpoint` fuzz target (docs/RELIABILITY.md,
/// "Fuzzing"): a checkpoint whose footer (docs/FORMAT.md §3.7) counts other
/// payloads than its frames hold is corrupt, however a reader pages through
/// it. A footer that promised more payloads than the file held was once
/// accepted when the last page happened to end exactly at the last frame.
@Suite struct CheckpointFooterDamageTests {
    /// A file datastore in `directory` with a checkpoint at update 4 holding
    /// three payloads, whose footer is then rewritten (with a valid checksum)
    /// to count `promised` payloads.
    static func makeCheckpoint(in directory: String, promising promised: UInt64) async throws -> (FileDatastore, CheckpointInfo) {
        let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
        try await store.createIfMissing()
        let record = try LogRecord([.set(key: Array("k".utf8), value: Array("v".utf8))]).encoded()
        _ = try await store.append(contentsOf: Array(repeating: record, count: 4))
        let writer = try await store.beginCheckpoint(at: 4)
        for _ in 0..<3 { try await writer.append(record) }
        _ = try await writer.publish()

        let path = "\(directory)/checkpoint-\(String(repeating: "0", count: 19))4.ckpt"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let footer = bytes.count - 32
        #expect(bytes[footer..<footer + 8].elementsEqual("WCCKPEND".utf8))
        bytes.replaceSubrange(footer + 8..<footer + 16, with: withUnsafeBytes(of: promised.littleEndian) { Array($0) })
        let checksum = CRC32C.checksum(bytes[footer..<footer + 24])
        bytes.replaceSubrange(footer + 24..<footer + 28, with: withUnsafeBytes(of: checksum.littleEndian) { Array($0) })
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let checkpoint = try #require(try await store.latestCheckpoint())
        #expect(checkpoint.recordCount == promised)
        return (store, checkpoint)
    }

    /// Reads every page of `checkpoint`, `perPage` payloads at a time.
    static func readAll(_ checkpoint: CheckpointInfo, of store: FileDatastore, perPage: Int) async throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        var position = CheckpointPosition.start
        while true {
            let page = try await store.readCheckpoint(checkpoint, from: position, limits: DatastorePageLimits(maximumCount: perPage, maximumBytes: 1 << 20))
            payloads += page.payloads
            guard let next = page.next else { return payloads }
            position = next
        }
    }

    static func isCorruptRecord(_ error: any Error) -> Bool {
        if case DatastoreError.corruptRecord = error { return true }
        return false
    }

    /// Footers that count five payloads, or two, where three were written:
    /// refused with pages of every size, including pages that end exactly
    /// at the last frame.
    @Test(arguments: [5, 2] as [UInt64])
    func aFooterCountingOtherPayloadsIsCorrupt(promised: UInt64) async throws {
        try await withTemporaryDirectory { directory in
            let (store, checkpoint) = try await Self.makeCheckpoint(in: directory, promising: promised)
            for perPage in 1...4 {
                await #expect(performing: { try await Self.readAll(checkpoint, of: store, perPage: perPage) }, throws: Self.isCorruptRecord)
            }
        }
    }

    /// The same checkpoint with its true count reads in full with pages of every size.
    @Test func aFooterCountingItsPayloadsReads() async throws {
        try await withTemporaryDirectory { directory in
            let (store, checkpoint) = try await Self.makeCheckpoint(in: directory, promising: 3)
            for perPage in 1...4 {
                #expect(try await Self.readAll(checkpoint, of: store, perPage: perPage).count == 3)
            }
        }
    }
}
