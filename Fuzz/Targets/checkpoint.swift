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
let layout: FileDatastoreLayout = {
    let directory = Scratch.path("log")
    Scratch.createDirectory(directory)
    return FileDatastoreLayout(directory: directory)
}()

/// Small pages, so that paging through the checkpoint is exercised.
let limits = DatastorePageLimits(maximumCount: 3, maximumBytes: 1024)

/// The update id the checkpoint file is named after, when its header is valid (else 1).
func updateID(of bytes: [UInt8]) -> UInt64 {
    if case .success(let header) = FileHeader.decode(bytes, expecting: .checkpoint) { return header.value }
    return 1
}

/// Every payload of `checkpoint`, paging through it with reads of `chunkSize` bytes.
func payloads(of checkpoint: CheckpointInfo, chunkSize: Int) -> Result<[[UInt8]], DatastoreError> {
    Result { () throws(DatastoreError) in
        var payloads: [[UInt8]] = []
        var position = CheckpointPosition.start
        while true {
            let page = try CheckpointFile.read(checkpoint, in: layout, from: position, limits: limits, chunkSize: chunkSize)
            payloads += page.payloads
            guard let next = page.next else { return payloads }
            precondition(next.index > position.index || position == .start, "paging through a checkpoint does not advance")
            position = next
        }
    }
}

/// Finds the checkpoint and reads it with two read sizes.
func check(_ bytes: [UInt8]) {
    let path = layout.checkpointPath(updateID(of: bytes))
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
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var repaired = bytes
    ChecksumRepair.datastoreFile(&repaired)
    for variant in repaired == bytes ? [bytes] : [bytes, repaired] { check(variant) }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        // Checkpoints of 0, 1, 3 and 12 payloads (some of 1,500 bytes, so that the last spans
        // several 4 KiB reads), written by FileDatastore's checkpoint writer.
        [0, 1, 3, 12].map { count in
            let directory = Scratch.path("seed-log")
            Scratch.remove(directory)
            let updateID = UInt64(count + 2)
            runBlocking {
                let store = try! FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never))
                try! await store.createIfMissing()
                for index in 0..<updateID {
                    _ = try! await store.append(encodedRecord([("n", "\(index)")]))
                }
                let writer = try! await store.beginCheckpoint(at: updateID)
                for index in 0..<count {
                    let value = String(repeating: "v", count: index % 4 == 3 ? 1500 : 5)
                    try! await writer.append(encodedRecord([("key/\(index)", value)]))
                }
                _ = try! await writer.publish()
            }
            return Scratch.read(FileDatastoreLayout(directory: directory).checkpointPath(updateID))
        }
    }
    return 0
}
