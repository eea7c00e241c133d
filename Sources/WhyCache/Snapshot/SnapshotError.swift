import Glibc

/// Why writing, reading or restoring a snapshot failed.
///
/// Every defect of an input snapshot is one of the first seven cases, found
/// before anything is installed: a restore that throws leaves the file at
/// the state path as it was. Offsets count bytes of the snapshot stream
/// (docs/FORMAT.md section 6), after decompression.
public enum SnapshotError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The input does not start with the snapshot magic bytes (nor with a
    /// gzip stream that does).
    case notASnapshot

    /// The snapshot was written in a format version this library does not read.
    case unsupportedFormatVersion(found: UInt32, supported: UInt32)

    /// The snapshot's header sets flags this library does not know.
    case unsupportedFlags(UInt32)

    /// The input ends at stream offset `offset`, inside the header, an entry
    /// or the trailer.
    case truncated(offset: UInt64)

    /// The checksum of the header, or of the whole stream (kept in the
    /// trailer), does not match the bytes read.
    case checksumMismatch(SnapshotError.ChecksummedPart)

    /// The stream is well-formed up to `offset` and breaks a rule of the
    /// format there: a bad varint, a key or value out of bounds, keys out of
    /// order, a key outside the snapshot's prefixes, a key count that does
    /// not match, or bytes after the trailer.
    case corrupt(offset: UInt64, reason: String)

    /// zlib failed: the gzip input is damaged, or compression could not run.
    case compression(reason: String)

    /// The state file at the restore path is a valid, initialized state at
    /// a newer update id than the snapshot; restoring would move its readers
    /// backwards. See ``SnapshotRestorer/replacesNewerState``.
    case stateIsNewer(stateUpdateID: UInt64, snapshotUpdateID: UInt64)

    /// The snapshot holds the keys under `snapshotPrefixes`, but the state
    /// file at the restore path subscribes to `statePrefixes` — or the
    /// restorer's ``SnapshotRestorer/options`` ask for them — so installing
    /// it would change which keys the file keeps. Both lists are canonical,
    /// empty meaning every key (``/WhyCacheState/SharedStateFile/subscribedPrefixes``).
    case subscriptionMismatch(snapshotPrefixes: [[UInt8]], statePrefixes: [[UInt8]])

    /// The state to write was never built from a change log (it is the empty
    /// state of a file that was only created), so it has no meaningful
    /// update id. See ``/WhyCacheState/StateSnapshot/isInitialized``.
    case uninitializedState

    /// The caller passed a value the snapshot functions cannot use (a key
    /// prefix, a compression level, a source that reported more bytes than
    /// its buffer holds).
    case invalidArgument(reason: String)

    /// The state file being read, built or replaced failed.
    case stateFile(StateFileError)

    /// Reading from a source or writing to a sink failed with `errno`.
    /// Sources and sinks throw this themselves (those of
    /// ``SnapshotStreams`` do).
    case io(operation: String, errno: Int32)

    /// The parts of a snapshot stream that carry a checksum.
    public enum ChecksummedPart: Sendable, Hashable {
        /// The header, checked before any entry is read.
        case header
        /// The whole stream up to the trailer's checksum, checked at its end.
        case stream
    }

    /// A human-readable explanation of the error.
    public var description: String {
        switch self {
        case .notASnapshot:
            "the input is not a WhyCache snapshot"
        case .unsupportedFormatVersion(let found, let supported):
            "the snapshot has format version \(found); this library reads version \(supported)"
        case .unsupportedFlags(let flags):
            "the snapshot uses features this library does not know (header flags 0x\(String(flags, radix: 16)))"
        case .truncated(let offset):
            "the snapshot is truncated: the input ends at byte \(offset) of the stream"
        case .checksumMismatch(.header):
            "the snapshot header's checksum does not match"
        case .checksumMismatch(.stream):
            "the snapshot's checksum does not match: its contents are damaged"
        case .corrupt(let offset, let reason):
            "the snapshot is corrupt at byte \(offset) of the stream: \(reason)"
        case .compression(let reason):
            "gzip failed: \(reason)"
        case .stateIsNewer(let state, let snapshot):
            "the state file is at update \(state), newer than the snapshot's update \(snapshot); refusing to move it backwards"
        case .subscriptionMismatch(let snapshot, let state):
            "the snapshot holds \(KeyPrefixes.describe(snapshot)), but the state file subscribes to \(KeyPrefixes.describe(state)); refusing to install it"
        case .uninitializedState:
            "the state was never built from a change log; there is nothing to snapshot"
        case .invalidArgument(let reason):
            "invalid argument: \(reason)"
        case .stateFile(let error):
            error.description
        case .io(let operation, let code):
            "\(operation) failed: \(SystemCallError.describe(errno: code)) (errno \(code))"
        }
    }
}

extension SnapshotError {
    /// Runs `body`, reporting a failure of the state file as ``stateFile(_:)``.
    static func wrapping<Result: ~Copyable>(_ body: () throws(StateFileError) -> Result) throws(SnapshotError) -> Result {
        do throws(StateFileError) { return try body() } catch { throw .stateFile(error) }
    }
}
