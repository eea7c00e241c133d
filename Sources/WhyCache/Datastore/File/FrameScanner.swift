/// Reads consecutive frames of a segment or checkpoint file, checking each
/// one, up to the file size seen when the scanner was made.
///
/// The scanner only reports what it finds; whether an invalid frame is a torn
/// tail (a write that has not finished or never will) or corruption is the
/// caller's decision, guided by ``Step/invalid(reason:reachesEnd:)``.
struct FrameScanner {
    /// What the scanner found at its position.
    enum Step {
        /// A valid frame with the expected id and the last four bytes of its
        /// payload (little-endian; nil for a shorter payload), which for a
        /// log record are its checksum; `payload` is `nil` unless requested.
        case frame(updateID: UInt64, offset: Int, payloadLength: Int, payloadSuffix: UInt32?, payload: [UInt8]?)
        /// The frames end exactly at the end of the file.
        case end
        /// The bytes at the position are not a valid frame. `reachesEnd` tells
        /// whether the bad bytes could be an unfinished last write: they run to
        /// the end of the file (an incomplete frame, all-zero bytes up to the
        /// end, or a complete frame that ends exactly at the end of the file
        /// and whose payload checksum fails because a whole page of it reads
        /// as zeros — a write that a machine crash cut short). A complete
        /// frame whose payload fails its checksum otherwise was written in
        /// full and damaged afterwards: its id may have been read, so it is
        /// never taken for an unfinished write.
        case invalid(reason: String, reachesEnd: Bool)
    }

    /// The file being read.
    let file: DatastoreFile

    /// The end of the bytes this scanner looks at.
    let end: Int

    /// Where the next frame starts.
    private(set) var offset: Int

    /// The id the next frame must carry.
    private(set) var nextID: UInt64

    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var bufferStart = 0

    /// Creates a scanner reading `file` from `offset`, where a frame with id
    /// `nextID` is expected, up to `end` (by default the file's current size).
    init(file: DatastoreFile, offset: Int, nextID: UInt64, end: Int? = nil, chunkSize: Int) throws(DatastoreError) {
        self.file = file
        if let end { self.end = end } else { self.end = try file.size() }
        self.offset = offset
        self.nextID = nextID
        self.chunkSize = chunkSize
    }

    /// Reads the frame at the position and, if it is valid, moves past it.
    mutating func next(wantPayload: Bool) throws(DatastoreError) -> Step {
        if offset == end { return .end }
        guard offset < end else { return .invalid(reason: "the file ends before byte \(offset)", reachesEnd: true) }
        guard end - offset >= LogFrame.headerSize, try load(offset, count: LogFrame.headerSize) else {
            return .invalid(reason: "incomplete frame header", reachesEnd: true)
        }
        let local = offset - bufferStart
        guard let header = LogFrame.header(in: buffer, at: local) else {
            return .invalid(reason: "frame header checksum mismatch", reachesEnd: try zeroesReachEnd())
        }
        guard header.updateID == nextID else {
            return .invalid(reason: "frame carries id \(header.updateID) where \(nextID) was expected", reachesEnd: false)
        }
        // The id after the largest one does not exist: no frame may carry it.
        guard nextID < .max else {
            return .invalid(reason: "frame carries the largest id, \(nextID), which leaves none for the next record", reachesEnd: false)
        }
        guard header.payloadLength <= WhyCacheLimits.maximumRecordSize else {
            return .invalid(reason: "frame length \(header.payloadLength) exceeds the maximum record size", reachesEnd: false)
        }
        let frameEnd = offset + LogFrame.headerSize + header.payloadLength
        guard frameEnd <= end, try load(offset, count: frameEnd - offset) else {
            return .invalid(reason: "incomplete frame", reachesEnd: true)
        }
        let payloadStart = offset + LogFrame.headerSize - bufferStart
        let payload = buffer[payloadStart..<payloadStart + header.payloadLength]
        guard CRC32C.checksum(payload) == header.payloadChecksum else {
            let unwritten = frameEnd == end && Self.holdsZeroPage(payload, startingAt: offset + LogFrame.headerSize)
            return .invalid(reason: "payload checksum mismatch", reachesEnd: unwritten)
        }
        let step = Step.frame(
            updateID: header.updateID, offset: offset, payloadLength: header.payloadLength,
            payloadSuffix: LogRecordFormat.trailingChecksum(of: payload), payload: wantPayload ? Array(payload) : nil
        )
        offset = frameEnd
        nextID += 1
        return step
    }

    /// The size of the pages a file system writes back independently: after
    /// a machine crash, a write may have reached the disk page by page.
    static let pageSize = 4096

    /// Whether `payload`, which starts at byte `fileOffset` of the file,
    /// holds a page of the file (from a multiple of ``pageSize`` to the next
    /// one or to the payload's end) whose bytes are all zero: what a write
    /// looks like when the machine crashed after the file grew and before
    /// every page of the write reached the disk. A flipped bit or other
    /// damage to a record that was written in full never zeroes a page.
    static func holdsZeroPage(_ payload: ArraySlice<UInt8>, startingAt fileOffset: Int) -> Bool {
        let payloadEnd = fileOffset + payload.count
        var page = (fileOffset + pageSize - 1) / pageSize * pageSize
        while page < payloadEnd {
            let from = payload.startIndex + (page - fileOffset)
            let to = payload.startIndex + (min(page + pageSize, payloadEnd) - fileOffset)
            if payload[from..<to].allSatisfy({ $0 == 0 }) { return true }
            page += pageSize
        }
        return false
    }

    /// Makes `buffer` hold the bytes `start..<start + count`, reading a chunk
    /// if needed. Returns false when the file holds fewer bytes (it shrank).
    private mutating func load(_ start: Int, count: Int) throws(DatastoreError) -> Bool {
        if start >= bufferStart && start + count <= bufferStart + buffer.count { return true }
        buffer = []
        buffer = try file.read(count: min(max(chunkSize, count), end - start), at: start)
        bufferStart = start
        return buffer.count >= count
    }

    /// Whether every byte from the position to the end is zero, as a
    /// pre-allocated or partly flushed tail looks after a machine crash.
    private mutating func zeroesReachEnd() throws(DatastoreError) -> Bool {
        var position = offset
        while position < end {
            let chunk = try file.read(count: min(chunkSize, end - position), at: position)
            guard !chunk.isEmpty, chunk.allSatisfy({ $0 == 0 }) else { return false }
            position += chunk.count
        }
        return true
    }
}
