// Fuzz target: the shared-state file (docs/FORMAT.md §1) as another process
// or a damaged disk may leave it: the input is the whole file, written to a
// scratch path and opened with `SharedStateFile.open` (header, subscribed-
// prefix block, current commit record); a file that opens is read (update
// id, statistics, every entry, a lookup), verified, and written to in one
// transaction (a key set, its first key removed).
//
// Every failure must be a `StateFileError`, never a trap or a stray memory
// access.

@testable import WhyCache
@testable import WhyCacheState

/// Where the input is written.
let statePath = Scratch.path("state")

/// Opens, reads, verifies and writes the file at `statePath`.
func exercise() {
    var options = SharedStateFile.Options()
    options.createIfMissing = false
    let file: SharedStateFile
    do {
        file = try SharedStateFile.open(at: statePath, options: options)
    } catch {
        _ = error.description
        return
    }
    _ = file.subscribedPrefixes
    _ = try? file.updateID()
    _ = try? file.statistics()
    _ = try? file.verify()
    var firstKey: [UInt8]?
    if let view = try? file.snapshot() {
        firstKey = (try? view.entries())?.first?.key
        _ = try? view.value(forKey: Array("color".utf8))
        view.close()
    }
    let key = file.subscribedPrefixes.first.map { $0 + [0x21] } ?? Array("fuzz".utf8)
    if let transaction = try? file.beginWrite() {
        do {
            try transaction.setValue(Array("written".utf8), forKey: key)
            if let firstKey { _ = try transaction.removeValue(forKey: firstKey) }
            try transaction.commit()
        } catch {
            transaction.abandon()
        }
        _ = try? file.verify()
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    ChecksumRepair.eachVariant(of: Array(UnsafeBufferPointer(start: data, count: size)), repairedBy: ChecksumRepair.stateFile) { variant in
        Scratch.write(variant, to: statePath)
        exercise()
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Files with one reader slot (an 8 KiB header and reader table): empty; with keys; with
        // keys, deletions and a retired version; and one subscribed to two prefixes. Durable
        // commits (no boot id), so that the seeds open on any machine; cut after the last block
        // the current commit reaches (the file grows in 1 MiB steps).
        func seed(prefixes: [[UInt8]], _ body: (SharedStateFile) throws -> Void) -> [UInt8] {
            var options = SharedStateFile.Options()
            options.readerSlotCount = 1
            options.maximumFileSize = 1 << 20
            options.durability = .systemCrash
            options.subscribedPrefixes = prefixes
            Scratch.remove(statePath)
            // The file is released before it is opened again: it holds the one reader slot.
            let end = { () -> Int in
                let file = try! SharedStateFile.open(at: statePath, options: options)
                try! body(file)
                let used = Int(try! file.statistics().heapBytes) + file.mapped.heapStart
                return max(used, Int(file.mapped.word(at: FileLayout.bumpOffset)))
            }()
            let bytes = Array(Scratch.read(statePath).prefix(end))
            Scratch.write(bytes, to: statePath)
            var reopen = SharedStateFile.Options()
            reopen.createIfMissing = false
            precondition(try! SharedStateFile.open(at: statePath, options: reopen).verify() >= 0)
            return bytes
        }
        func put(_ pairs: [(String, String)], deleting: [String] = [], updateID: UInt64) -> (SharedStateFile) throws -> Void {
            { file in
                try file.write { transaction in
                    for (key, value) in pairs { try transaction.setValue(Array(value.utf8), forKey: Array(key.utf8)) }
                    for key in deleting { _ = try transaction.removeValue(forKey: Array(key.utf8)) }
                    try transaction.setUpdateID(updateID)
                    try transaction.markInitialized()
                }
            }
        }
        return [
            seed(prefixes: []) { _ in },
            seed(prefixes: [], put([("color", "blue"), ("colour", "red"), ("flag/a", ""), ("n", String(repeating: "9", count: 200))], updateID: 3)),
            seed(prefixes: []) { file in
                try put((0..<40).map { ("key/\($0)", "value \($0)") }, updateID: 1)(file)
                try put([("key/7", "changed")], deleting: ["key/3", "key/30"], updateID: 2)(file)
            },
            seed(prefixes: [Array("flag/".utf8), Array("user/".utf8)], put([("flag/a", "on"), ("user/1", "x")], updateID: 5)),
        ]
    }
    return 0
}
