// Fuzz target: the snapshot stream (docs/FORMAT.md §6), plain and gzip,
// through `SnapshotReader`, the one decoder of snapshots (the restorer
// reads through it too; the `snapshot-restore` target drives that path).
//
// Input: an options byte, then the stream (``SnapshotInput``).
//
// Beyond "no crash": how the stream is cut into reads does not change what
// it decodes to. Every input is read again whole (one call hands out
// everything), and the two readings must agree on validity, and for a valid
// stream on its header and every entry.

@testable import WhyCache

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let input = SnapshotInput(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let whole = SnapshotInput(chunk: 1 << 20, gzips: input.gzips, stream: input.stream)
    for stream in input.variants {
        let chunked = input.read(stream)
        guard input.chunk != whole.chunk else { continue }
        let unchunked = whole.read(stream)
        switch (chunked.summary, unchunked.summary) {
        case (.success(let summary), .success(let same)):
            precondition(summary.header == same.header, "the chunked read decoded another header")
            precondition(
                chunked.entries.elementsEqual(unchunked.entries) { $0.key == $1.key && $0.value == $1.value },
                "the chunked read decoded other entries")
        case (.failure, .failure):
            break
        case (.success, .failure(let error)), (.failure(let error), .success):
            preconditionFailure("the stream is valid read in one way and not in the other: \(error)")
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked { SnapshotInput.seeds() }
    return 0
}
