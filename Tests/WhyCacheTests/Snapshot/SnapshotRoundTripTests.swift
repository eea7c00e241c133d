import Foundation
import Testing
@testable import WhyCache
import WhyCacheTestSupport

/// Writing a state as a snapshot and restoring it gives the same state.
@Suite struct SnapshotRoundTripTests {
    static let compressions: [SnapshotCompression] = [.none, .gzip(level: 6)]

    /// Writes `entries` at `updateID` into a state, snapshots it with
    /// `writer`, restores it into a new path through `source`, and checks the
    /// restored file entry by entry, its update id, its initialized mark and
    /// `verify()`.
    private func roundTrip(
        _ entries: [(key: [UInt8], value: [UInt8])], updateID: UInt64, writer: SnapshotWriter,
        restorer: SnapshotRestorer = SnapshotRestorer(),
        source: ([UInt8]) -> SnapshotSource = { memorySource($0) },
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        try withTemporaryDirectory { directory in
            let original = try makeInitializedState(at: directory + "/original", entries: entries, updateID: updateID)
            let expected = try original.snapshot().entries()
            let (bytes, written) = try snapshotBytes(of: original, writer: writer)
            #expect(written.transferredBytes == UInt64(bytes.count), sourceLocation: sourceLocation)
            #expect(written.header.keyCount == expected.count, sourceLocation: sourceLocation)
            #expect(written.header.updateID == updateID, sourceLocation: sourceLocation)

            let restoredPath = directory + "/restored"
            let read = try restorer.restore(from: source(bytes), at: restoredPath)
            #expect(read == written, sourceLocation: sourceLocation)
            let restored = try SharedStateFile.open(at: restoredPath)
            let view = try restored.snapshot()
            defer { view.close() }
            #expect(sameEntries(try view.entries(), expected), sourceLocation: sourceLocation)
            #expect(view.updateID == updateID, sourceLocation: sourceLocation)
            #expect(view.isInitialized, sourceLocation: sourceLocation)
            #expect(try restored.verify() == expected.count, sourceLocation: sourceLocation)
            #expect(try directoryNames(directory) == ["original", "restored"], sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: compressions)
    func emptyState(compression: SnapshotCompression) throws {
        try roundTrip([], updateID: 7, writer: SnapshotWriter(compression: compression))
    }

    @Test(arguments: compressions)
    func oneKey(compression: SnapshotCompression) throws {
        try roundTrip([(bytes("color"), bytes("blue"))], updateID: 1, writer: SnapshotWriter(compression: compression))
    }

    /// Random binary keys and values, with the longest key, empty values and
    /// a value several times the size of the writer's buffer, read through
    /// a source that returns random small amounts.
    @Test(arguments: compressions)
    func manyRandomBinaryEntries(compression: SnapshotCompression) throws {
        var generator = SeededGenerator(seed: 11)
        var entries: [(key: [UInt8], value: [UInt8])] = []
        for _ in 0..<3000 {
            let key = (0..<Int.random(in: 1...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let value = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            entries.append((key, value))
        }
        entries.append(([UInt8](repeating: 0xFF, count: WhyCacheLimits.maximumKeyLength), bytes("longest key")))
        entries.append((bytes("empty"), []))
        entries.append((bytes("large"), (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }))
        try roundTrip(
            entries, updateID: 123_456, writer: SnapshotWriter(compression: compression),
            source: { randomChunkSource($0, seed: 5) })
    }

    /// Restores commit every few keys (bounded transactions); the state is
    /// the same.
    /// Values larger than the reader's first buffer (64 KiB), than its
    /// full-size buffer (1 MiB) and than the gzip reader's largest read,
    /// between small entries: the reader's buffer grows as the bytes arrive,
    /// whether the source hands out all it is asked for (the buffer doubles
    /// towards full-size reads) or a few kilobytes at a time (it grows only
    /// for the large values).
    @Test(arguments: compressions)
    func valuesLargerThanEveryBufferRoundTrip(compression: SnapshotCompression) throws {
        var generator = SeededGenerator(seed: 64)
        var entries: [(key: [UInt8], value: [UInt8])] = []
        for (index, size) in [10, 70_000, 5, 1_300_000, 0, 3_000_001, 9].enumerated() {
            entries.append((bytes("k\(index)"), (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        }
        let writer = SnapshotWriter(compression: compression)
        try roundTrip(entries, updateID: 3, writer: writer)
        try roundTrip(entries, updateID: 3, writer: writer, source: { randomChunkSource($0, seed: 5, maximum: 9000) })
    }

    @Test func restoreInSmallTransactions() throws {
        let entries = (0..<1000).map { (key: bytes("key-\($0)"), value: bytes("value-\($0)")) }
        var restorer = SnapshotRestorer()
        restorer.maximumKeysPerTransaction = 7
        try roundTrip(entries, updateID: 9, writer: SnapshotWriter(), restorer: restorer)
        restorer.maximumKeysPerTransaction = .max
        restorer.maximumBytesPerTransaction = 100
        try roundTrip(entries, updateID: 9, writer: SnapshotWriter(), restorer: restorer)
    }

    /// The library's bytes are exactly the layout FORMAT.md documents, and a
    /// state always gives the same bytes.
    @Test func bytesFollowTheDocumentedLayout() throws {
        try withTemporaryDirectory { directory in
            let entries = [(key: bytes("a"), value: bytes("1")), (bytes("b"), []), (bytes("ba"), [UInt8](repeating: 7, count: 200))]
            let file = try makeInitializedState(at: directory + "/state", entries: entries, updateID: 42)
            let view = try file.snapshot()
            let commitTime = view.commitTimeNanoseconds
            view.close()
            let (first, summary) = try snapshotBytes(of: file)
            let (second, _) = try snapshotBytes(of: file)
            #expect(first == second)
            #expect(summary.streamBytes == UInt64(first.count))
            #expect(first == HandmadeSnapshot(updateID: 42, commitTime: commitTime, entries: entries).encoded())
            #expect(summary.header.commitTimeNanoseconds == commitTime)
        }
    }

    /// The worked example of FORMAT.md section 6.3, byte for byte.
    @Test func theDocumentedExampleReads() throws {
        let documented: [UInt8] = [
            0x57, 0x43, 0x53, 0x4E, 0x41, 0x50, 0x53, 0x48, 0x01, 0x00, 0x00, 0x00, 0x34, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x36, 0xFE, 0x9C, 0x97, 0x17,
            0xD7, 0xD3, 0x11, 0xF9, 0x05, 0x63, 0x6F, 0x6C, 0x6F, 0x72, 0x04, 0x62, 0x6C, 0x75, 0x65, 0x57,
            0x43, 0x53, 0x4E, 0x50, 0x45, 0x4E, 0x44, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF,
            0x74, 0x9B, 0xE8,
        ]
        let handmade = HandmadeSnapshot(updateID: 7, commitTime: 1_700_000_000_000_000_000, entries: [(bytes("color"), bytes("blue"))])
        #expect(handmade.encoded() == documented)
        let reader = try SnapshotReader(source: memorySource(documented))
        #expect(reader.header.updateID == 7)
        #expect(reader.header.keyCount == 1)
        #expect(reader.header.commitTimeNanoseconds == 0x1797_9CFE_362A_0000)
        #expect(try reader.next({ key, value in [Array(key), Array(value)] }) == [bytes("color"), bytes("blue")])
        #expect(try reader.next({ _, _ in }) == nil)
    }

    /// Compressed output is a standard gzip stream, and a snapshot gzipped by
    /// `gzip` (also in several members) restores like the plain one.
    @Test func interoperatesWithGzip() throws {
        try withTemporaryDirectory { directory in
            let entries = (0..<5000).map { (key: bytes(String(format: "user:%06d", $0)), value: bytes("profile \($0)")) }
            let file = try makeInitializedState(at: directory + "/state", entries: entries, updateID: 77)
            let (plain, _) = try snapshotBytes(of: file)
            let (compressed, summary) = try snapshotBytes(of: file, writer: SnapshotWriter(compression: .gzip(level: 9)))
            #expect(compressed.starts(with: [0x1F, 0x8B]))
            #expect(compressed.count < plain.count / 3)
            #expect(summary.streamBytes == UInt64(plain.count))
            #expect(summary.transferredBytes == UInt64(compressed.count))

            // gunzip reads ours.
            try Data(compressed).write(to: URL(fileURLWithPath: directory + "/ours.gz"))
            try runGzip(["-d", directory + "/ours.gz"])
            #expect(try fileContents(directory + "/ours") == plain)

            // We read gzip's, and two members in a row.
            let half = plain.count / 2
            try Data(plain[..<half]).write(to: URL(fileURLWithPath: directory + "/first"))
            try Data(plain[half...]).write(to: URL(fileURLWithPath: directory + "/second"))
            try runGzip([directory + "/first", directory + "/second"])
            let members = try fileContents(directory + "/first.gz") + fileContents(directory + "/second.gz")
            let restored = try SnapshotRestorer().restore(from: memorySource(members), at: directory + "/restored")
            #expect(restored.header.updateID == 77)
            #expect(restored.transferredBytes == UInt64(members.count))
            #expect(sameEntries(try stateEntries(at: directory + "/restored"), try file.snapshot().entries()))
        }
    }

    /// The writer reads one pinned state: a writer thread that commits many
    /// changes while the snapshot is being written changes nothing in it.
    @Test func snapshotOfAPinnedViewIgnoresConcurrentCommits() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let entries = (0..<20_000).map { (key: bytes("key-\($0)"), value: [UInt8](repeating: UInt8($0 % 251), count: 100)) }
            let file = try makeInitializedState(at: path, entries: entries, updateID: 1)
            let view = try file.snapshot()
            defer { view.close() }
            let expected = try view.entries()

            // The writer runs between the first and the second buffer handed
            // to the sink, so the rest of the walk happens after all its commits.
            let writerDone = DispatchSemaphore(value: 0)
            let writerError = LockedBox<(any Error)?>(nil)
            var started = false
            var stream: [UInt8] = []
            let summary = try SnapshotWriter().write(view, to: { chunk in
                stream.append(contentsOf: chunk)
                guard !started else { return }
                started = true
                Thread.detachNewThread {
                    do {
                        for round in 0..<40 {
                            try file.write { transaction in
                                for index in stride(from: round, to: 20_000, by: 40) {
                                    if index % 3 == 0 {
                                        try transaction.removeValue(forKey: bytes("key-\(index)"))
                                    } else {
                                        try transaction.setValue(bytes("changed \(round)"), forKey: bytes("key-\(index)"))
                                    }
                                    try transaction.setValue(bytes("new"), forKey: bytes("new-\(round)-\(index)"))
                                }
                                try transaction.setUpdateID(UInt64(round + 2))
                            }
                        }
                    } catch {
                        writerError.value = error
                    }
                    writerDone.signal()
                }
                writerDone.wait()
            })
            #expect(writerError.value == nil)
            #expect(try file.updateID() == 41)
            #expect(summary.header.updateID == 1)
            #expect(summary.header.keyCount == 20_000)

            let restoredPath = directory + "/restored"
            try SnapshotRestorer().restore(from: memorySource(stream), at: restoredPath)
            #expect(sameEntries(try stateEntries(at: restoredPath), expected))
        }
    }

    /// A prefix list selects the keys written, is stored in canonical form,
    /// and the restored state holds exactly those keys.
    @Test(arguments: compressions)
    func prefixesSelectTheKeys(compression: SnapshotCompression) throws {
        try withTemporaryDirectory { directory in
            let keys = ["a", "ab", "abc", "b", "ba", "c", "c\u{7F}", "d", "user:1", "user:2", "users"].map(bytes)
            let file = try makeInitializedState(at: directory + "/state", entries: keys.map { ($0, $0) }, updateID: 3)
            let writer = SnapshotWriter(compression: compression, prefixes: [bytes("user:"), bytes("ab"), bytes("c"), bytes("ab"), bytes("abc")])
            let (stream, summary) = try snapshotBytes(of: file, writer: writer)
            #expect(summary.header.prefixes == [bytes("ab"), bytes("c"), bytes("user:")])
            #expect(summary.header.keyCount == 6)
            try SnapshotRestorer().restore(from: memorySource(stream), at: directory + "/restored")
            #expect(try stateEntries(at: directory + "/restored").map(\.key) == ["ab", "abc", "c", "c\u{7F}", "user:1", "user:2"].map(bytes))

            let all = try snapshotBytes(of: file, writer: SnapshotWriter(prefixes: [bytes("x"), []])).summary.header
            #expect(all.prefixes.isEmpty)
            #expect(all.keyCount == keys.count)
        }
    }

    /// Progress reports count up to the key count and end with every byte.
    @Test func progressReachesTheEnd() throws {
        try withTemporaryDirectory { directory in
            let entries = (0..<30_000).map { (key: bytes("key-\($0)"), value: [UInt8](repeating: 1, count: 80)) }
            let file = try makeInitializedState(at: directory + "/state", entries: entries, updateID: 5)
            var written: [SnapshotProgress] = []
            let (stream, summary) = try snapshotBytes(of: file, progress: { written.append($0) })
            var read: [SnapshotProgress] = []
            let restored = try SnapshotRestorer().restore(from: memorySource(stream, chunk: 100_000), at: directory + "/restored") {
                read.append($0)
            }
            for reports in [written, read] {
                #expect(reports.count > 2)
                #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.keysDone <= $1.keysDone && $0.transferredBytes <= $1.transferredBytes })
                #expect(reports.allSatisfy { $0.keyCount == entries.count })
                #expect(reports.last?.keysDone == entries.count)
            }
            #expect(written.last?.transferredBytes == summary.transferredBytes)
            #expect(read.last?.transferredBytes == restored.transferredBytes)
        }
    }

    /// The file-descriptor sink and source carry a snapshot through a file.
    @Test func fileDescriptorStreams() throws {
        try withTemporaryDirectory { directory in
            let file = try makeInitializedState(at: directory + "/state", entries: [(bytes("k"), bytes("v"))], updateID: 8)
            let descriptor = open(directory + "/snapshot", O_CREAT | O_RDWR | O_TRUNC, 0o600)
            #expect(descriptor >= 0)
            defer { close(descriptor) }
            let view = try file.snapshot()
            defer { view.close() }
            let summary = try SnapshotWriter(compression: .gzip(level: 1)).write(view, to: SnapshotStreams.writing(to: descriptor))
            #expect(lseek(descriptor, 0, SEEK_SET) == 0)
            let validated = try SnapshotReader.validate(from: SnapshotStreams.reading(from: descriptor))
            #expect(validated == summary)
            #expect(lseek(descriptor, 0, SEEK_SET) == 0)
            try SnapshotRestorer().restore(from: SnapshotStreams.reading(from: descriptor), at: directory + "/restored")
            #expect(try SharedStateFile.open(at: directory + "/restored").value(forKey: bytes("k")) == bytes("v"))
        }
    }

    /// A reader hands out the entries in order, then nil once the trailer is checked.
    @Test func readerStreamsEntries() throws {
        let entries = [(key: bytes("a"), value: bytes("x")), (bytes("b"), bytes("yy"))]
        let stream = HandmadeSnapshot(updateID: 4, prefixes: [], entries: entries).encoded()
        let reader = try SnapshotReader(source: memorySource(stream, chunk: 3))
        #expect(reader.header.updateID == 4)
        #expect(reader.header.formatVersion == SnapshotReader.supportedFormatVersion)
        var seen: [(key: [UInt8], value: [UInt8])] = []
        while try reader.next({ seen.append((Array($0), Array($1))) }) != nil {}
        #expect(sameEntries(seen, entries))
        #expect(try reader.next({ _, _ in }) == nil)
        #expect(reader.summary.streamBytes == UInt64(stream.count))
    }
}

/// A value shared between threads under a lock.
final class LockedBox<Value>: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
