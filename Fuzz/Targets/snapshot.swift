// Fuzz target: the snapshot stream (docs/FORMAT.md §6), plain and gzip,
// through `SnapshotReader` and `SnapshotRestorer`, and the restored state
// file through `StateSnapshot`.
//
// Input: one options byte, then the stream. Options bits 0-2 choose how
// many bytes the source hands out per call (1 to 1 MiB: the reader's
// buffering at every boundary); bit 3 gzips the stream first (so that the
// snapshot behind a valid gzip wrapper is fuzzed too; a stream that starts
// with `1f 8b` is read as gzip anyway); bit 4 restores it into a state
// file instead of only validating it, then reads the restored file back.
//
// Beyond "no crash": a restore succeeds exactly when validation does, and
// the restored file holds the entries and update id the stream holds.

import Foundation
@testable import WhyCache

/// Where restores go.
let statePath = Scratch.path("state")

/// Options of the restored state file: small, so that a restore is quick.
let restorer: SnapshotRestorer = {
    var options = SharedStateFile.Options()
    options.readerSlotCount = 1
    options.maximumFileSize = 1 << 24
    return SnapshotRestorer(options: options, replacingNewerState: true)
}()

/// The chunk sizes bits 0-2 of the options byte choose from.
let chunkSizes = [1, 3, 8, 61, 4096, 1 << 20, 1 << 20, 1 << 20]

/// A source that hands out `bytes` at most `chunk` bytes at a time.
func source(_ bytes: [UInt8], chunk: Int) -> SnapshotSource {
    var offset = 0
    return { (buffer) throws(SnapshotError) in
        let count = min(chunk, buffer.count, bytes.count - offset)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
        offset += count
        return count
    }
}

/// `bytes` gzipped by the library's own compressor.
func gzipped(_ bytes: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    let sink: SnapshotSink = { output.append(contentsOf: $0) }
    let compressor = try! GzipCompressor(level: 1)
    bytes.withUnsafeBytes { raw in try! compressor.compress(raw, to: sink) }
    try! compressor.finish(to: sink)
    return output
}

/// Validates `stream`, and with `restoring`, restores it and reads the result back.
func check(_ stream: [UInt8], chunk: Int, restoring: Bool) {
    var entries: [([UInt8], [UInt8])] = []
    let validated = Result { () throws(SnapshotError) -> SnapshotSummary in
        let reader = try SnapshotReader(source: source(stream, chunk: chunk))
        while try reader.next({ key, value in entries.append((Array(key), Array(value))) }) != nil {}
        return reader.summary
    }
    if case .failure(let error) = validated { _ = error.description }
    guard restoring else { return }
    Scratch.remove(statePath)
    let restored = Result { () throws(SnapshotError) in try restorer.restore(from: source(stream, chunk: chunk), at: statePath) }
    switch (validated, restored) {
    case (.success(let summary), .success(let same)):
        precondition(summary.header == same.header, "the restorer read another header")
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        let file = try! SharedStateFile.open(at: statePath, options: options)
        precondition(try! file.verify() == entries.count, "the restored file holds another number of keys")
        let view = try! file.snapshot()
        defer { view.close() }
        precondition(view.updateID == summary.header.updateID, "the restored file has another update id")
        let stored = try! view.entries()
        precondition(stored.map(\.key) == entries.map(\.0) && stored.map(\.value) == entries.map(\.1), "the restored entries differ")
    case (.failure, .failure(let error)):
        _ = error.description
        precondition(!FileManager.default.fileExists(atPath: statePath), "a failed restore left a state file")
    case (.success, .failure(.stateFile(.invalidOptions))):
        // More prefixes than a state file may subscribe to (docs/FORMAT.md §5): refused by the restore only.
        break
    case (.success, .failure(let error)):
        preconditionFailure("a valid snapshot was not restored: \(error)")
    case (.failure(let error), .success):
        preconditionFailure("an invalid snapshot was restored: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let options = data[0]
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var repaired = stream
    ChecksumRepair.snapshot(&repaired)
    for variant in repaired == stream ? [stream] : [stream, repaired] {
        check(options & 8 != 0 ? gzipped(variant) : variant, chunk: chunkSizes[Int(options & 7)], restoring: options & 16 != 0)
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Snapshots of an empty state, of three keys, and of three keys under two prefixes (plain
        // and gzip), each once validated with the whole input at once and once restored with
        // 3-byte reads.
        var options = SharedStateFile.Options()
        options.readerSlotCount = 1
        options.maximumFileSize = 1 << 24
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
    return 0
}
