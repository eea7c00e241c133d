// Fuzz target: the segment files of a file datastore (docs/FORMAT.md §3.2–3.5),
// read the way a machine reads its log: the input is a datastore directory
// (``DatastoreImage``) written to a scratch folder; a new `FileDatastore`
// finds the end of the log, pages through the records, hands them to a
// `SharedCache` whose `update()` applies them to a fresh state file, and
// appends a record (which truncates a torn tail, or refuses a damaged log).
//
// Every failure must be a typed error (`DatastoreError`, `CacheError`),
// never a trap.

@testable import WhyCache

/// The datastore's folder and the state file that replays it.
let directory = Scratch.path("log")
let statePath = Scratch.path("state")


/// Reads, replays and appends to the datastore in `directory`.
func exercise() async {
    guard let store = try? FileDatastore(
        directory: directory, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 4096, readChunkSize: 4096))
    else { preconditionFailure("valid options were refused") }
    let latest = try? await store.latestUpdateID()
    _ = try? await store.firstRetainedUpdateID()
    var after: UInt64 = 0
    for _ in 0..<64 {
        guard let page = try? await store.readPage(after: after, through: nil, limits: smallPages), let last = page.entries.last else { break }
        for entry in page.entries {
            _ = entry.payload.withUnsafeBytes { try? LogRecordView(validating: $0) }
        }
        after = last.updateID
    }
    if let latest, latest > 0 {
        _ = try? await store.readPage(after: latest - 1, through: latest, limits: smallPages)
    }
    Scratch.remove(statePath)
    var configuration = SharedCache.Configuration()
    configuration.stateFileOptions.readerSlotCount = 1
    configuration.stateFileOptions.maximumFileSize = 1 << 24
    configuration.readPageLimits = smallPages
    configuration.coalescesWrites = false
    if let cache = try? SharedCache(statePath: statePath, datastore: store, configuration: configuration) {
        _ = try? await cache.update()
        _ = try? await cache.set(Array("fuzz".utf8), forKey: Array("k".utf8))
        cache.close()
    }
    _ = try? await store.readRecords(after: 0, through: nil, limits: smallPages)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    DatastoreImage.exerciseEachVariant(of: data, count: size, in: directory, exercise)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Logs of 0, 1, 3 and 12 records; the last spans three segments of 4 KiB.
        [0, 1, 3, 12].map { count in
            writeSeedLog(records: count, segmentSize: 4096, in: directory)
            return DatastoreImage.capture(directory)
        }
    }
    return 0
}
