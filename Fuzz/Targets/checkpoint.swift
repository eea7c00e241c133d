// Fuzz target: one checkpoint file of a file datastore (docs/FORMAT.md §3.7)
// through `CheckpointFile`, the code that finds, describes and pages through
// checkpoints: the header, the footer and every frame. The input is the file;
// it is written into an otherwise empty datastore folder under the name its
// header gives it (its update id), or as the checkpoint of id 1 when it has
// no valid header. The `checkpoint-replay` target drives whole datastores
// through the cache and the history rewriter; this one runs far more inputs
// per second.
//
// Every failure must be a `DatastoreError`, never a trap. Beyond that:
// - how the file is cut into reads does not change what it holds: paging
//   through it reading 4 KiB at a time and reading 1 MiB gives the same
//   payloads, or both refuse it;
// - a checkpoint read to its end holds as many payloads as its footer says,
//   each a frame's intact bytes.

@testable import WhyCache

/// The datastore folder, and how it is laid out.
let layout = Scratch.datastoreLayout()


/// Every payload of `checkpoint`, paging through it with reads of `chunkSize` bytes.
func payloads(of checkpoint: CheckpointInfo, chunkSize: Int) -> Result<[[UInt8]], DatastoreError> {
    Result { () throws(DatastoreError) in
        var payloads: [[UInt8]] = []
        var position = CheckpointPosition.start
        while true {
            let page = try CheckpointFile.read(checkpoint, in: layout, from: position, limits: smallPages, chunkSize: chunkSize)
            payloads += page.payloads
            guard let next = page.next else { return payloads }
            precondition(next.index > position.index || position == .start, "paging through a checkpoint does not advance")
            position = next
        }
    }
}

/// Finds the checkpoint and reads it with two read sizes.
func check(_ bytes: [UInt8]) {
    let path = layout.checkpointPath(FileHeader.fuzzedName(of: bytes, expecting: .checkpoint))
    Scratch.write(bytes, to: path)
    defer { Scratch.remove(path) }
    let found = Result { () throws(DatastoreError) in try CheckpointFile.latest(in: layout) }
    guard case .success(let checkpoint?) = found else {
        if case .failure(let error) = found { _ = error.description }
        return
    }
    switch (payloads(of: checkpoint, chunkSize: 4096), payloads(of: checkpoint, chunkSize: 1 << 20)) {
    case (.success(let small), .success(let large)):
        precondition(small == large, "the read size changed the payloads")
        precondition(UInt64(small.count) == checkpoint.recordCount, "a checkpoint read to its end holds another number of payloads")
        for payload in small { _ = payload.withUnsafeBytes { try? LogRecordView(validating: $0) } }
    case (.failure(let error), .failure):
        _ = error.description
    case (.success, .failure(let error)), (.failure(let error), .success):
        preconditionFailure("the checkpoint reads with one read size and is refused with the other: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    ChecksumRepair.eachVariant(of: Array(UnsafeBufferPointer(start: data, count: size)), repairedBy: ChecksumRepair.datastoreFile, check)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Checkpoints of 0, 1, 3 and 12 payloads (some of 1,500 bytes, so that the last spans
        // several 4 KiB reads), written by FileDatastore's checkpoint writer.
        [0, 1, 3, 12].map { count in
            let directory = Scratch.path("seed-log")
            let updateID = UInt64(count + 2)
            writeSeedLog(records: count + 2, segmentSize: 64 << 20, in: directory)
            runBlocking {
                let store = try! FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
                let writer = try! await store.beginCheckpoint(at: updateID)
                for index in 0..<count { try! await writer.append(seedRecord(index)) }
                _ = try! await writer.publish()
            }
            return Scratch.read(FileDatastoreLayout(directory: directory).checkpointPath(updateID))
        }
    }
    return 0
}
