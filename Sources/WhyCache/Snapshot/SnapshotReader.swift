/// Reads a snapshot from a source, front to back, checking everything the
/// format promises (docs/FORMAT.md section 6.5); the one decoder of
/// snapshots, which ``SnapshotRestorer`` uses too.
///
/// Creating a reader reads and checks the header. Each ``next(_:)`` then
/// hands out one entry; the call after the last entry reads the trailer and
/// returns nil only if the stream's checksum and key count match and no byte
/// follows. Entries handed out before that are not yet known to be intact:
/// act on them only once ``next(_:)`` returned nil. Gzip input is recognised
/// and decompressed on the way.
///
/// ```swift
/// let reader = try SnapshotReader(source: SnapshotStreams.reading(from: descriptor))
/// while try reader.next({ key, value in print(key.count, value.count) }) != nil {}
/// print(reader.summary.header.updateID)   // every entry was intact
/// ```
///
/// Memory stays bounded: a 1 MiB buffer, grown only to hold the largest
/// value, plus one zlib stream. After an error the reader throws that error
/// again. A reader belongs to one thread at a time.
public final class SnapshotReader {
    /// The snapshot format version this library reads (and writes).
    public static let supportedFormatVersion = SnapshotFormat.version

    /// The snapshot's header, checked (checksum included) before any entry.
    public let header: SnapshotHeader

    private let input: SnapshotInput
    private var rules: SnapshotKeyRules
    private var keysDone = 0
    private var reportedRefills = 0
    private var state = State.reading
    private let progressHandler: ((SnapshotProgress) -> Void)?

    private enum State {
        case reading
        case finished
        case failed(SnapshotError)
    }

    /// Starts reading the snapshot in `source` and reads its header.
    ///
    /// - Parameters:
    ///   - source: the input, plain or gzip; the reader keeps it until it
    ///     is released.
    ///   - progress: called after each buffer of input and at the end.
    /// - Throws: ``SnapshotError/notASnapshot``,
    ///   ``SnapshotError/unsupportedFormatVersion(found:supported:)``,
    ///   ``SnapshotError/unsupportedFlags(_:)``, ``SnapshotError/truncated(offset:)``,
    ///   ``SnapshotError/checksumMismatch(_:)`` (`.header`),
    ///   ``SnapshotError/corrupt(offset:reason:)``,
    ///   ``SnapshotError/compression(reason:)``, and what `source` throws.
    public init(source: @escaping SnapshotSource, progress: ((SnapshotProgress) -> Void)? = nil) throws(SnapshotError) {
        let input = SnapshotInput(source: try SnapshotByteSource(source: source))
        let length = try input.peek(SnapshotFormat.prologueSize) { (prologue) throws(SnapshotError) in
            try SnapshotHeader.length(fromPrologue: prologue)
        }
        let header = try input.read(length) { (bytes) throws(SnapshotError) in try SnapshotHeader(decoding: bytes) }
        self.input = input
        self.header = header
        self.rules = SnapshotKeyRules(prefixes: header.prefixes)
        self.progressHandler = progress
    }

    /// How far the reader has got.
    public var progress: SnapshotProgress {
        SnapshotProgress(keysDone: keysDone, keyCount: header.keyCount, transferredBytes: input.transferredBytes)
    }

    /// The header and the sizes read so far: the whole snapshot's once
    /// ``next(_:)`` returned nil.
    public var summary: SnapshotSummary {
        SnapshotSummary(header: header, streamBytes: input.offset, transferredBytes: input.transferredBytes)
    }

    /// Reads the next entry and returns what `body` returns for it, or nil
    /// after the last entry, once the trailer and the end of the input are
    /// checked.
    ///
    /// - Parameter body: called with the key and the value, buffers valid
    ///   during the call only. An error it throws stops the reader.
    /// - Throws: ``SnapshotError/truncated(offset:)``,
    ///   ``SnapshotError/corrupt(offset:reason:)``,
    ///   ``SnapshotError/checksumMismatch(_:)`` (`.stream`),
    ///   ``SnapshotError/compression(reason:)``, and what `source` and `body`
    ///   throw.
    public func next<Result>(
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(SnapshotError) -> Result
    ) throws(SnapshotError) -> Result? {
        switch state {
        case .finished: return nil
        case .failed(let error): throw error
        case .reading: break
        }
        do {
            guard keysDone < header.keyCount else {
                try readTrailer()
                state = .finished
                progressHandler?(progress)
                return nil
            }
            let result = try readEntry(body)
            keysDone += 1
            if input.refills != reportedRefills, let progressHandler {
                reportedRefills = input.refills
                progressHandler(progress)
            }
            return result
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// Reads the whole snapshot in `source` and checks it, without storing
    /// anything.
    ///
    /// - Returns: the snapshot's header and sizes.
    /// - Throws: as ``init(source:progress:)`` and ``next(_:)``.
    public static func validate(
        from source: SnapshotSource, progress: ((SnapshotProgress) -> Void)? = nil
    ) throws(SnapshotError) -> SnapshotSummary {
        try withoutActuallyEscaping(source) { (source) throws(SnapshotError) in
            let reader = try SnapshotReader(source: source, progress: progress)
            while try reader.next({ _, _ in }) != nil {}
            return reader.summary
        }
    }

    /// Reads one entry: each length is checked before the bytes it counts
    /// are read, and the key against the keys before it.
    private func readEntry<Result>(
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(SnapshotError) -> Result
    ) throws(SnapshotError) -> Result {
        let keyOffset = input.offset
        let keyLength = try input.readVarint()
        if let problem = SnapshotKeyRules.keyLengthProblem(keyLength) { throw .corrupt(offset: keyOffset, reason: problem) }
        try input.read(Int(keyLength)) { (key) throws(SnapshotError) in
            if let problem = rules.admit(key) { throw .corrupt(offset: keyOffset, reason: problem) }
        }
        let valueOffset = input.offset
        let valueLength = try input.readVarint()
        if let problem = SnapshotKeyRules.valueLengthProblem(valueLength) { throw .corrupt(offset: valueOffset, reason: problem) }
        return try input.read(Int(valueLength)) { (value) throws(SnapshotError) in
            try rules.lastKey.withUnsafeBytesTyped { (key) throws(SnapshotError) in try body(key, value) }
        }
    }

    /// Reads the trailer: its magic (else the entries did not end where the
    /// header's key count says), the checksum of everything before it, its
    /// key count, and then the end of the input.
    private func readTrailer() throws(SnapshotError) {
        let trailerOffset = input.offset
        try input.read(SnapshotFormat.trailerMagic.count) { (magic) throws(SnapshotError) in
            guard magic.elementsEqual(SnapshotFormat.trailerMagic) else {
                throw .corrupt(offset: trailerOffset, reason: "no trailer after the \(header.keyCount) entries the header counts")
            }
        }
        let keyCount = try input.read(8) { $0.loadLittleEndian(UInt64.self, at: 0) }
        let expected = input.checksum.value
        let stored = try input.read(SnapshotFormat.checksumSize, checksummed: false) { $0.loadLittleEndian(UInt32.self, at: 0) }
        guard stored == expected else { throw .checksumMismatch(.stream) }
        guard keyCount == UInt64(header.keyCount) else {
            throw .corrupt(offset: trailerOffset + 8, reason: "the trailer counts \(keyCount) keys, the header \(header.keyCount)")
        }
        guard try input.isAtEnd() else { throw .corrupt(offset: input.offset, reason: "bytes follow the trailer") }
    }
}

@available(*, unavailable, message: "a reader belongs to one thread at a time")
extension SnapshotReader: Sendable {}
