/// Reads consecutive frames of a segment or checkpoint file, checking each
/// one, up to the file size seen when the scanner was made.
///
/// The scanner only reports what it finds; whether an invalid frame is a torn
/// tail (a write that has not finished or never will) or corruption is the
/// caller's decision, guided by ``Step/invalid(reason:reachesEnd:)``.
struct FrameScanner {
    /// What the scanner found at its position.
    enum Step {
        /// A valid frame with the expected id; `payload` is `nil` unless requested.
        case frame(updateID: UInt64, offset: Int, payloadLength: Int, payload: [UInt8]?)
        /// The frames end exactly at the end of the file.
        case end
        /// The bytes at the position are not a valid frame. `reachesEnd` tells
        /// whether the bad bytes could be an unfinished last write: they run to
        /// the end of the file (an incomplete frame, a complete frame whose
        /// payload checksum fails and which ends exactly at the end of the
        /// file, or all-zero bytes up to the end).
        case invalid(reason: String, reachesEnd: Bool)
    }

    /// The file being read.
    let file: FileDescriptor

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
    init(file: FileDescriptor, offset: Int, nextID: UInt64, end: Int? = nil, chunkSize: Int) throws(DatastoreError) {
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
            return .invalid(reason: "payload checksum mismatch", reachesEnd: frameEnd == end)
        }
        let step = Step.frame(
            updateID: header.updateID, offset: offset, payloadLength: header.payloadLength,
            payload: wantPayload ? Array(payload) : nil
        )
        offset = frameEnd
        nextID += 1
        return step
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
