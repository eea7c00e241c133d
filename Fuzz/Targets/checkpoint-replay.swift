// Fuzz target: the checkpoint files of a file datastore (docs/FORMAT.md §3.7),
// read by everything that reads them: the input is a datastore directory
// (``DatastoreImage``) written to a scratch folder; a new `FileDatastore`
// finds its latest checkpoint and pages through it, removes the history the
// checkpoint covers, a `SharedCache` rebuilds a fresh state file from it
// (`update()`), and a `HistoryRewriter` folds it into a new checkpoint.
//
// Every failure must be a typed error (`DatastoreError`, `CacheError`),
// never a trap.

import Foundation
@testable import WhyCache

/// The datastore's folder, the state file that replays it, and the rewriter's scratch folder.
let directory = Scratch.path("log")
let statePath = Scratch.path("state")
let rewriteScratch = Scratch.path("rewrite")


/// A small state file for the cache and the rewriter.
let configuration: SharedCache.Configuration = {
    var configuration = SharedCache.Configuration()
    configuration.stateFileOptions.readerSlotCount = 1
    configuration.stateFileOptions.maximumFileSize = 1 << 24
    configuration.readPageLimits = smallPages
    return configuration
}()

/// Reads the checkpoint, removes history, rebuilds and rewrites.
func exercise() async {
    guard let store = try? FileDatastore(
        directory: directory, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 4096, readChunkSize: 4096))
    else { preconditionFailure("valid options were refused") }
    if let checkpoint = try? await store.latestCheckpoint() {
        var position = CheckpointPosition.start
        for _ in 0..<64 {
            guard let page = try? await store.readCheckpoint(checkpoint, from: position, limits: smallPages) else { break }
            for payload in page.payloads {
                _ = payload.withUnsafeBytes { try? LogRecordView(validating: $0) }
            }
            guard let next = page.next else { break }
            position = next
        }
        _ = try? await store.removeRecords(through: checkpoint.updateID)
    }
    Scratch.remove(statePath)
    if let cache = try? SharedCache(statePath: statePath, datastore: store, configuration: configuration) {
        _ = try? await cache.update()
        cache.close()
    }
    Scratch.createDirectory(rewriteScratch)
    _ = try? await HistoryRewriter(datastore: store, scratchDirectory: rewriteScratch, configuration: configuration).rewrite(keepingLast: 1)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    DatastoreImage.exerciseEachVariant(of: data, count: size, in: directory, exercise)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Logs of 3 and 8 records whose history through the second last was rewritten into a
        // checkpoint (removed from the segments), and a checkpoint of 3 payloads published
        // without removing anything.
        var seeds = [3, 8].map { count in
            Scratch.remove(directory)
            return runBlocking {
                let store = try! FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 4096))
                try! await store.createIfMissing()
                for index in 0..<count {
                    _ = try! await store.append(encodedRecord([("key/\(index % 5)", "value \(index)"), ("n", "\(index)")]))
                }
                Scratch.createDirectory(rewriteScratch)
                _ = try! await HistoryRewriter(datastore: store, scratchDirectory: rewriteScratch, configuration: configuration)
                    .rewrite(keepingLast: 1)
                return DatastoreImage.capture(directory)
            }
        }
        Scratch.remove(directory)
        seeds.append(runBlocking {
            let store = try! FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
            try! await store.createIfMissing()
            _ = try! await store.append(encodedRecord([("a", "1")]))
            let writer = try! await store.beginCheckpoint(at: 1)
            for payload in [encodedRecord([("a", "1")]), encodedRecord([("b", "2"), ("c", "")]), encodedRecord([("d", "4")])] {
                try! await writer.append(payload)
            }
            _ = try! await writer.publish()
            return DatastoreImage.capture(directory)
        })
        return seeds
    }
    return 0
}
