// Fuzz target: the header page of a shared-state file (docs/FORMAT.md §1.2,
// with the prefix block) through `StateFileHeader(validating:…)`, the check
// every process makes before it maps a file: magic, format version, checksum, creation
// flags, geometry against the file's size, and the subscribed-prefix block.
// The `state-file` target opens, reads, verifies and writes whole files;
// this one runs far more inputs per second.
//
// Input: the file's size as `fstat` reports it (eight bytes, little-endian),
// then the bytes that `pread` returned for the header page (at most a page).
//
// Every failure must be a `StateFileError`, never a trap. Beyond that: a
// header that passes describes a file a mapping can cover (its heap starts
// inside the size it allows, and the file holds its first commit record),
// and its prefixes are what the block spells, sorted, none inside another.

@testable import WhyCache
@testable import WhyCacheState

/// Validates `header` as read from a file of `fileSize` bytes.
func check(_ header: [UInt8], fileSize: Int) {
    let readCount = min(header.count, FileLayout.headerSize)
    var page = Array(header.prefix(FileLayout.headerSize))
    page += repeatElement(0, count: FileLayout.headerSize - page.count)
    let validated = Result { () throws(StateFileError) in
        try StateFileHeader(validating: page, readCount: readCount, fileSize: fileSize, path: "fuzz")
    }
    switch validated {
    case .success(let header):
        precondition(header.heapStart <= header.mapSize && fileSize <= header.mapSize, "a valid header allows a file its mapping does not cover")
        precondition(fileSize >= header.heapStart + FileLayout.commitRecordSize, "a valid header's file lacks its first commit record")
        precondition(header.heapStart == FileLayout.heapStart(readerSlotCount: header.readerSlotCount), "a valid header's heap is misplaced")
        precondition(KeyPrefixes(canonicalizing: header.subscription.prefixes) == header.subscription, "valid prefixes are not canonical")
    case .failure(let error):
        _ = error.description
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 8 else { return 0 }
    let fileSize = Int(truncatingIfNeeded: bytes.loadLittleEndian(UInt64.self, at: 0) & (1 << 48 - 1))
    ChecksumRepair.eachVariant(of: Array(bytes[8...]), repairedBy: ChecksumRepair.stateFile) { check($0, fileSize: fileSize) }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // The header pages of new files (with one and with 126 reader slots, durable or not,
        // subscribed to everything, to one prefix and to three), each with its size.
        let path = Scratch.path("seed-state")
        func seed(slots: Int, durable: Bool, prefixes: [String]) -> [UInt8] {
            var options = SharedStateFile.Options()
            options.readerSlotCount = slots
            options.maximumFileSize = 1 << 24
            options.durability = durable ? .systemCrash : .processCrash
            options.subscribedPrefixes = prefixes.map { Array($0.utf8) }
            Scratch.remove(path)
            _ = try! SharedStateFile.open(at: path, options: options)
            let file = Scratch.read(path)
            var seed: [UInt8] = []
            seed.appendLittleEndian(UInt64(file.count))
            return seed + file.prefix(FileLayout.headerSize)
        }
        return [
            seed(slots: 1, durable: true, prefixes: []),
            seed(slots: 126, durable: false, prefixes: []),
            seed(slots: 1, durable: true, prefixes: ["flag/"]),
            seed(slots: 8, durable: false, prefixes: ["a", "user/", "\u{7f}z"]),
        ]
    }
    return 0
}
