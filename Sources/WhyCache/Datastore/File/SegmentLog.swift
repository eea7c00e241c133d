import Glibc

/// The segment files of one file datastore: reading ranges of records,
/// finding the end of the log, appending frames, dropping old segments.
///
/// All methods block on file I/O; ``FileDatastore`` calls them on its own
/// dispatch queues. Appending and removing require the caller to hold the
/// datastore's append lock (see ``FileDatastore``); reading needs no lock.
///
/// Invariants of the directory that this type keeps:
/// - A segment is named by the id of its first frame, and frames inside it
///   carry consecutive ids.
/// - A new segment is created (complete with its header, then renamed into
///   place) only after the previous one was verified to its end and holds at
///   least one frame, so it is named after the previous one's last id + 1 and
///   no segment but the last can end in a torn frame.
/// - Only the last segment grows; only bytes after its last valid frame are
///   ever truncated.
/// - The last segment is never removed, so the newest id is always readable.
final class SegmentLog: Sendable {
    /// Where the files are.
    let layout: FileDatastoreLayout

    /// How the files are sized and synchronized.
    let options: FileDatastoreOptions

    /// What this process knows about the segments.
    private let catalog: Locked<SegmentCatalog>

    /// The bytes of frames between two positions remembered in the catalog.
    private static let markInterval = 64 << 10

    /// The end of the log found by ``tail()``.
    struct Tail {
        /// The last segment.
        var segment: UInt64
        /// Where its valid frames end.
        var offset: Int
        /// The id the next record gets.
        var nextID: UInt64
        /// Whether invalid bytes (an unfinished write) follow the valid frames.
        var hasTornBytes: Bool
    }

    /// Creates the log of `layout`.
    init(layout: FileDatastoreLayout, options: FileDatastoreOptions) {
        self.layout = layout
        self.options = options
        self.catalog = Locked(SegmentCatalog(markInterval: Self.markInterval))
    }

    // MARK: Reading

    /// The records with ids in `(after, through]`, at most one page of
    /// `limits`, and the last four bytes of the record `after` (its
    /// checksum; see ``LogPage/precedingRecordChecksum``) when that record is
    /// in the same segment: read from the file just before the first frame
    /// when this process knows where that frame starts, else seen by a walk
    /// that starts before it.
    func read(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits
    ) throws(DatastoreError) -> (entries: [LogEntry], checksumOfAfter: UInt32?) {
        guard after < UInt64.max, through.map({ $0 > after }) ?? true else { return ([], nil) }
        let first = after + 1
        return try retryingIfSegmentVanished { () throws(DatastoreError) -> ([LogEntry], UInt32?) in
            guard let segment = try locate(first) else {
                throw .corruptRecord(location: layout.directory, updateID: first, reason: "no segment file holds this record")
            }
            var start = catalog.withLock { $0.start(in: segment, for: first) }
            var checksumOfAfter: UInt32?
            if after >= segment {
                if start.updateID == first {
                    // The frame `after` ends where frame `first` starts.
                    let file = try DatastoreFile.open(layout.segmentPath(segment), flags: O_RDONLY)
                    defer { file.close() }
                    checksumOfAfter = LogRecordFormat.trailingChecksum(of: try file.read(count: 4, at: start.offset - 4))
                } else {
                    start = catalog.withLock { $0.start(in: segment, for: after) }
                }
            }
            var entries: [LogEntry] = []
            var bytes = 0
            _ = try walk(segment: segment, from: start, payloadsFrom: first) { updateID, suffix, payload in
                if updateID == after { checksumOfAfter = suffix }
                guard let payload else { return true }
                if let through, updateID > through { return false }
                entries.append(LogEntry(updateID: updateID, payload: payload))
                bytes += payload.count
                return entries.count < limits.maximumCount && bytes < limits.maximumBytes && updateID != through
            }
            return (entries, checksumOfAfter)
        }
    }

    /// Finds the end of the log: the last segment and its last valid frame.
    func tail() throws(DatastoreError) -> Tail {
        try retryingIfSegmentVanished { () throws(DatastoreError) -> Tail in
            var segment = catalog.withLock { $0.lastSegment }
            if segment == nil {
                try refreshSegments()
                segment = catalog.withLock { $0.lastSegment }
            }
            guard let segment else {
                throw .notADatastore(path: layout.directory, reason: "it holds no segment files")
            }
            let start = catalog.withLock { $0.verifiedEnd(of: segment) }
            return try walk(segment: segment, from: start, payloadsFrom: .max) { _, _, _ in true }
        }
    }

    // MARK: Writing (the caller holds the append lock)

    /// Appends `payloads` as frames with consecutive ids after the current end
    /// of the log, first truncating an unfinished write left by a dead
    /// appender and starting a new segment when the last one is full.
    ///
    /// - Precondition: the caller holds the append lock; every payload fits in a frame.
    func append(_ payloads: [[UInt8]]) throws(DatastoreError) -> [UInt64] {
        let durable = options.syncPolicy == .always
        var end = try tail()
        // Ids are never reused, so a log whose ids run out takes no more records
        // (only damaged segment names get near: 2^64 − 1 appends would take millennia).
        guard UInt64(payloads.count) <= UInt64.max - end.nextID else {
            throw .invalidRequest(reason: "the log's update ids are used up: the next would be \(end.nextID), \(payloads.count) records do not fit")
        }
        var file = try DatastoreFile.open(layout.segmentPath(end.segment), flags: O_WRONLY)
        defer { file.close() }
        if end.hasTornBytes {
            try file.truncate(to: end.offset)
            if durable { try file.synchronizeData() }
        }
        if end.offset >= options.segmentSize && end.nextID > end.segment {
            try createSegment(end.nextID)
            // Opened before the old one is closed: the deferred close must
            // never close a descriptor twice (its number may be reused by then).
            let next = try DatastoreFile.open(layout.segmentPath(end.nextID), flags: O_WRONLY)
            file.close()
            file = next
            end = Tail(segment: end.nextID, offset: FileHeader.size, nextID: end.nextID, hasTornBytes: false)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payloads.reduce(0) { $0 + LogFrame.headerSize + $1.count })
        for (index, payload) in payloads.enumerated() {
            LogFrame.append(updateID: end.nextID + UInt64(index), payload: payload, to: &bytes)
        }
        try file.write(bytes, at: end.offset)
        if durable { try file.synchronizeData() }
        let written = SegmentCatalog.Mark(updateID: end.nextID + UInt64(payloads.count), offset: end.offset + bytes.count)
        catalog.withLock { $0.record(segment: end.segment, found: [], end: written) }
        return (0..<UInt64(payloads.count)).map { end.nextID + $0 }
    }

    /// Creates the segment whose first record will be `firstUpdateID`: the
    /// header is written to a temporary file that is then renamed into place.
    func createSegment(_ firstUpdateID: UInt64) throws(DatastoreError) {
        let header = FileHeader(kind: .segment, value: firstUpdateID).encoded
        try DatastoreFileSystem.replaceAtomically(layout.segmentPath(firstUpdateID), with: header, durable: options.syncPolicy == .always)
        catalog.withLock { $0.add(segment: firstUpdateID) }
    }

    /// Deletes the segments all of whose records have ids up to `updateID`;
    /// the last segment always stays.
    func removeSegments(through updateID: UInt64) throws(DatastoreError) {
        let segments = try layout.segmentIDs()
        for (segment, next) in zip(segments, segments.dropFirst()) where next <= updateID &+ 1 {
            try DatastoreFileSystem.remove(layout.segmentPath(segment))
            catalog.withLock { $0.remove(segment: segment) }
        }
        if options.syncPolicy == .always { try DatastoreFileSystem.synchronizeDirectory(layout.directory) }
    }

    // MARK: Walking frames

    /// Reads frames from `start` in `segment`, and on into the following
    /// segments, until the end of the log or until `visit` returns false.
    ///
    /// `visit` receives each frame's id and the last four bytes of its
    /// payload (``FrameScanner/Step/frame(updateID:offset:payloadLength:payloadSuffix:payload:)``),
    /// with the payload when the id is at least `payloadsFrom` (nil before).
    /// Verified positions are recorded in the catalog.
    ///
    /// An invalid frame is a torn tail — "not written yet" — only when its bytes
    /// reach the end of the last segment; anything else is corruption.
    private func walk(
        segment startSegment: UInt64, from start: SegmentCatalog.Mark, payloadsFrom: UInt64,
        visit: (_ updateID: UInt64, _ suffix: UInt32?, _ payload: [UInt8]?) -> Bool
    ) throws(DatastoreError) -> Tail {
        var segment = startSegment
        var mark = start
        // Whether a later segment exists, which means this one is complete.
        var sealed = false
        while true {
            let scan = try self.scan(segment: segment, from: mark, sealed: sealed, payloadsFrom: payloadsFrom, visit: visit)
            let end = scan.verifiedEnd
            if scan.stop == .visitorStopped {
                return Tail(segment: segment, offset: end.offset, nextID: end.updateID, hasTornBytes: false)
            }
            guard end.updateID > segment, DatastoreFileSystem.exists(layout.segmentPath(end.updateID)) else {
                return Tail(segment: segment, offset: end.offset, nextID: end.updateID, hasTornBytes: scan.stop == .tornTail)
            }
            catalog.withLock { $0.add(segment: end.updateID) }
            if scan.stop == .tornTail {
                // The write that looked unfinished must have completed before the
                // next segment was created: read this segment again, now sealed.
                sealed = true
                mark = end
            } else {
                segment = end.updateID
                mark = SegmentCatalog.Mark(updateID: segment, offset: FileHeader.size)
                sealed = false
            }
        }
    }

    /// Why ``scan(segment:from:sealed:payloadsFrom:visit:)`` stopped.
    private enum ScanStop {
        /// The visitor asked to stop.
        case visitorStopped
        /// The segment's frames end where its file ends.
        case endOfSegment
        /// Invalid bytes that reach the end of the file follow the frames:
        /// an unfinished write, in a segment not known to be sealed.
        case tornTail
    }

    /// Reads the frames of `segment` from `start`, feeding them to `visit`,
    /// and records in the catalog the positions it verified. Returns where
    /// the verified frames end and why the scan stopped.
    ///
    /// - Throws: ``DatastoreError/corruptRecord(location:updateID:reason:)``
    ///   for an invalid frame that is not a torn tail: one followed by more
    ///   bytes, or any invalid frame of a `sealed` segment.
    private func scan(
        segment: UInt64, from start: SegmentCatalog.Mark, sealed: Bool, payloadsFrom: UInt64,
        visit: (_ updateID: UInt64, _ suffix: UInt32?, _ payload: [UInt8]?) -> Bool
    ) throws(DatastoreError) -> (verifiedEnd: SegmentCatalog.Mark, stop: ScanStop) {
        let path = layout.segmentPath(segment)
        let file = try DatastoreFile.open(path, flags: O_RDONLY)
        defer { file.close() }
        var (scanner, lastMark) = try makeScanner(of: file, segment: segment, from: start)
        var found: [SegmentCatalog.Mark] = []
        var stop = ScanStop.endOfSegment
        scanning: while true {
            switch try scanner.next(wantPayload: scanner.nextID >= payloadsFrom) {
            case .frame(let updateID, let offset, _, let suffix, let payload):
                if offset - lastMark >= Self.markInterval {
                    found.append(SegmentCatalog.Mark(updateID: updateID, offset: offset))
                    lastMark = offset
                }
                if !visit(updateID, suffix, payload) {
                    stop = .visitorStopped
                    break scanning
                }
            case .end:
                break scanning
            case .invalid(let reason, let reachesEnd):
                guard reachesEnd, !sealed else {
                    throw .corruptRecord(location: "\(path) at byte \(scanner.offset)", updateID: scanner.nextID, reason: reason)
                }
                stop = .tornTail
                break scanning
            }
        }
        let verified = SegmentCatalog.Mark(updateID: scanner.nextID, offset: scanner.offset)
        catalog.withLock { $0.record(segment: segment, found: found, end: verified) }
        return (verified, stop)
    }

    /// A frame scanner over `file`, the segment `segment`, positioned at
    /// `start`, and the offset it starts at. The header is verified when the
    /// scan starts there. When the file now ends before `start` (verified
    /// frames vanished: it was cut by hand), what this process knew about
    /// the segment is forgotten and the scan starts over at its header.
    private func makeScanner(
        of file: DatastoreFile, segment: UInt64, from start: SegmentCatalog.Mark
    ) throws(DatastoreError) -> (FrameScanner, offset: Int) {
        if start.offset == FileHeader.size { try verifyHeader(of: file, segment: segment) }
        let scanner = try FrameScanner(file: file, offset: start.offset, nextID: start.updateID, chunkSize: options.readChunkSize)
        guard scanner.end < start.offset else { return (scanner, start.offset) }
        catalog.withLock { $0.forget(segment: segment) }
        try verifyHeader(of: file, segment: segment)
        let restarted = try FrameScanner(file: file, offset: FileHeader.size, nextID: segment, chunkSize: options.readChunkSize)
        return (restarted, FileHeader.size)
    }

    /// Checks the header of the segment that holds the ids from `segment`:
    /// ids start at 1, so a segment named 0 is not one of the log's.
    private func verifyHeader(of file: DatastoreFile, segment: UInt64) throws(DatastoreError) {
        guard segment >= 1 else {
            throw .corruptRecord(location: file.path, updateID: segment, reason: "update ids start at 1; no segment starts at 0")
        }
        let bytes = try file.read(count: FileHeader.size, at: 0)
        switch FileHeader.decode(bytes, expecting: .segment) {
        case .success(let header) where header.value == segment:
            return
        case .success(let header):
            throw .corruptRecord(location: file.path, updateID: segment, reason: "the header names first id \(header.value)")
        case .failure(let failure):
            throw .corruptRecord(location: file.path, updateID: segment, reason: "invalid segment header: \(failure)")
        }
    }

    // MARK: Finding segments

    /// The segment that holds `updateID`, listing the directory only when the
    /// catalog knows no candidate.
    private func locate(_ updateID: UInt64) throws(DatastoreError) -> UInt64? {
        if let segment = catalog.withLock({ $0.segment(containing: updateID) }) { return segment }
        try refreshSegments()
        return catalog.withLock { $0.segment(containing: updateID) }
    }

    /// Reloads the list of segments from the directory.
    private func refreshSegments() throws(DatastoreError) {
        let segments = try layout.segmentIDs()
        catalog.withLock { $0.reset(segments: segments) }
    }

    /// Runs `body`; if a segment it opened had been removed by another process,
    /// reloads the list of segments and runs it once more. (Of the calls
    /// `body` makes, only opening a file fails with `ENOENT`.)
    private func retryingIfSegmentVanished<T>(_ body: () throws(DatastoreError) -> T) throws(DatastoreError) -> T {
        do {
            return try body()
        } catch .ioFailure(_, _, ENOENT) {
            try refreshSegments()
            return try body()
        }
    }
}
