// Fuzz target (pipeline): the snapshot stream (docs/FORMAT.md §6), plain
// and gzip, validated by `SnapshotReader`, restored into a state file by
// `SnapshotRestorer`, and the restored file read back through
// `StateSnapshot`. The decoder alone is the `snapshot` target, which runs
// far more inputs per second.
//
// Input: an options byte, then the stream (``SnapshotInput``).
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

/// Validates `stream`, restores it and reads the result back.
func check(_ stream: [UInt8], of input: SnapshotInput) {
    let (validated, entries) = input.read(stream)
    Scratch.remove(statePath)
    let restored = Result { () throws(SnapshotError) in try restorer.restore(from: input.source(stream), at: statePath) }
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
    guard let input = SnapshotInput(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    for stream in input.variants { check(stream, of: input) }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked { SnapshotInput.seeds() }
    return 0
}
