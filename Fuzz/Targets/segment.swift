// Fuzz target: one segment file of a file datastore (docs/FORMAT.md §3.3–3.5)
// through `SegmentLog`, the code that finds the end of the log and reads its
// records: the header, the frames and their checksums, and the decision
// between a torn tail and damage. The input is the file; it is written into
// an otherwise empty datastore folder under the name its header gives it
// (the first id), or as the segment of id 1 when it has no valid header.
// The `log-replay` target drives whole datastores (several segments,
// checkpoints) through the cache; this one runs far more inputs per second.
//
// Every failure must be a `DatastoreError`, never a trap. Beyond that:
// - how the file is cut into reads does not change what is found: a log
//   that reads 4 KiB at a time and one that reads 1 MiB find the same end,
//   or both refuse the file;
// - when the end is found, every record before it reads back, in order,
//   with consecutive ids, each one a valid log record's frame.

@testable import WhyCache

/// The datastore folder, and how it is laid out.
let layout = Scratch.datastoreLayout()


/// Finds the end of the segment with two read sizes, then reads every record before it.
func check(_ bytes: [UInt8]) {
    let path = layout.segmentPath(FileHeader.fuzzedName(of: bytes, expecting: .segment))
    Scratch.write(bytes, to: path)
    defer { Scratch.remove(path) }
    let logs = [4096, 1 << 20].map {
        SegmentLog(layout: layout, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 4096, readChunkSize: $0))
    }
    let tails = logs.map { log in Result { () throws(DatastoreError) in try log.tail() } }
    switch (tails[0], tails[1]) {
    case (.success(let small), .success(let large)):
        precondition(
            small.segment == large.segment && small.offset == large.offset && small.nextID == large.nextID
                && small.hasTornBytes == large.hasTornBytes,
            "the read size changed where the log ends")
        readAll(through: small, from: logs[0])
    case (.failure(let error), .failure):
        _ = error.description
    case (.success, .failure(let error)), (.failure(let error), .success):
        preconditionFailure("the log ends with one read size and is refused with the other: \(error)")
    }
}

/// Reads the records of `log` up to `tail`, a page at a time.
func readAll(through tail: SegmentLog.Tail, from log: SegmentLog) {
    var after = tail.segment - 1
    while after + 1 < tail.nextID {
        let page: [LogEntry]
        do {
            page = try log.read(after: after, through: tail.nextID - 1, limits: smallPages).entries
        } catch {
            preconditionFailure("a record before the end of the log does not read back: \(error)")
        }
        precondition(!page.isEmpty, "a page before the end of the log is empty")
        for entry in page {
            precondition(entry.updateID == after + 1, "the records do not carry consecutive ids")
            _ = entry.payload.withUnsafeBytes { try? LogRecordView(validating: $0) }
            after = entry.updateID
        }
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
        // The segments of logs of 0, 1, 3 and 12 records (some of 1,500 bytes, so that the last
        // spans several 4 KiB reads), written by FileDatastore: every segment of each.
        [0, 1, 3, 12].flatMap { count in
            let directory = Scratch.path("seed-log")
            writeSeedLog(records: count, segmentSize: 8192, in: directory)
            let seedLayout = FileDatastoreLayout(directory: directory)
            return try! seedLayout.segmentIDs().map { Scratch.read(seedLayout.segmentPath($0)) }
        }
    }
    return 0
}
