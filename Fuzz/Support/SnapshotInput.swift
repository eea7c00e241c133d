// The snapshot stream as the `snapshot` and `snapshot-restore` targets read
// it: an options byte that chooses the source's chunk size and whether to
// gzip the stream first, the decoding of every entry, and the seed streams
// both targets start from.

@testable import WhyCache

/// One fuzz input for the snapshot targets: an options byte, then the stream.
///
/// Options bits 0-2 choose how many bytes the source hands out per call (1
/// to 1 MiB: the reader's buffering at every boundary); bit 3 gzips the
/// stream first, so that the snapshot behind a valid gzip wrapper is fuzzed
/// too (a stream that starts with `1f 8b` is read as gzip anyway). The other
/// bits are unused.
struct SnapshotInput {
    /// The chunk sizes bits 0-2 of the options byte choose from.
    static let chunkSizes = [1, 3, 8, 61, 4096, 1 << 20, 1 << 20, 1 << 20]

    /// The most bytes the source hands out per call.
    let chunk: Int
    /// Whether the stream is gzipped before it is read.
    let gzips: Bool
    /// The stream, before gzip.
    let stream: [UInt8]

    /// An input that reads `stream` `chunk` bytes at a time, gzipped first when `gzips` is true.
    init(chunk: Int, gzips: Bool, stream: [UInt8]) {
        self.chunk = chunk
        self.gzips = gzips
        self.stream = stream
    }

    /// Splits `bytes` into options and stream; nil for an empty input.
    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let options = bytes.first else { return nil }
        chunk = Self.chunkSizes[Int(options & 7)]
        gzips = options & 8 != 0
        stream = Array(bytes.dropFirst())
    }

    /// The stream as read (gzipped first when asked), as it is and with its
    /// checksums recomputed (``ChecksumRepair/snapshot(_:)``) when that changes it.
    var variants: [[UInt8]] {
        var repaired = stream
        ChecksumRepair.snapshot(&repaired)
        return (repaired == stream ? [stream] : [stream, repaired]).map { gzips ? Self.gzipped($0) : $0 }
    }

    /// A source that hands out `bytes` at most ``chunk`` bytes at a time.
    func source(_ bytes: [UInt8]) -> SnapshotSource {
        var offset = 0
        let chunk = chunk
        return { (buffer) throws(SnapshotError) in
            let count = min(chunk, buffer.count, bytes.count - offset)
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
            offset += count
            return count
        }
    }

    /// Reads `bytes` through `SnapshotReader`: the summary, or the error, and
    /// every entry the reader handed out before it finished or failed.
    func read(_ bytes: [UInt8]) -> (summary: Result<SnapshotSummary, SnapshotError>, entries: [(key: [UInt8], value: [UInt8])]) {
        var entries: [(key: [UInt8], value: [UInt8])] = []
        let summary = Result { () throws(SnapshotError) -> SnapshotSummary in
            let reader = try SnapshotReader(source: source(bytes))
            while try reader.next({ key, value in entries.append((Array(key), Array(value))) }) != nil {}
            return reader.summary
        }
        if case .failure(let error) = summary { _ = error.description }
        return (summary, entries)
    }

    /// `bytes` gzipped by the library's own compressor.
    static func gzipped(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        let sink: SnapshotSink = { output.append(contentsOf: $0) }
        let compressor = try! GzipCompressor(level: 1)
        bytes.withUnsafeBytes { raw in try! compressor.compress(raw, to: sink) }
        try! compressor.finish(to: sink)
        return output
    }

    /// Seeds: snapshots of an empty state, of three keys, and of three keys
    /// under two prefixes (plain and gzip), written by `SnapshotWriter`, each
    /// once read whole (options 5) and once with 3-byte reads (options 17).
    static func seeds() -> [[UInt8]] {
        var options = SharedStateFile.Options()
        options.readerSlotCount = 1
        options.maximumFileSize = 1 << 24
        let statePath = Scratch.path("seed-state")
        Scratch.remove(statePath)
        let file = try! SharedStateFile.open(at: statePath, options: options)
        var streams: [[UInt8]] = []
        func snapshot(_ writer: SnapshotWriter) {
            let view = try! file.snapshot()
            defer { view.close() }
            var stream: [UInt8] = []
            try! writer.write(view) { stream.append(contentsOf: $0) }
            streams.append(stream)
        }
        try! file.write { transaction in
            try transaction.setUpdateID(7)
            try transaction.markInitialized()
        }
        snapshot(SnapshotWriter())
        try! file.write { transaction in
            try transaction.setValue(Array("blue".utf8), forKey: Array("color".utf8))
            try transaction.setValue([], forKey: Array("flag/a".utf8))
            try transaction.setValue(Array(repeating: 7, count: 300), forKey: Array("user/1".utf8))
            try transaction.setUpdateID(9)
        }
        snapshot(SnapshotWriter())
        snapshot(SnapshotWriter(prefixes: [Array("flag/".utf8), Array("user/".utf8)]))
        snapshot(SnapshotWriter(compression: .gzip(level: 6), prefixes: [Array("flag/".utf8), Array("user/".utf8)]))
        return streams.flatMap { [[5] + $0, [17] + $0] }
    }
}
