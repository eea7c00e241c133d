/// Why a log record could not be encoded, split or decoded.
///
/// Decoding never skips a bad record: every corrupt, truncated or unknown
/// record is reported with one of these cases.
public enum LogRecordError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The operation at `operationIndex` has an empty key; keys are never empty.
    case emptyKey(operationIndex: Int)

    /// The key of the operation at `operationIndex` is longer than
    /// ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    case keyTooLong(operationIndex: Int, length: Int)

    /// The value of the operation at `operationIndex` is longer than
    /// ``/WhyCacheSupport/WhyCacheLimits/maximumValueLength``.
    case valueTooLong(operationIndex: Int, length: Int)

    /// A record must hold at least one operation.
    case noOperations

    /// The operation at `operationIndex` alone encodes to a record of
    /// `recordSize` bytes, more than the `maximumRecordSize` a splitter allows.
    case operationTooLarge(operationIndex: Int, recordSize: Int, maximumRecordSize: Int)

    /// A splitter was configured with a maximum record size outside
    /// `LogRecordSplitter/allowedMaximumRecordSizes`.
    case invalidMaximumRecordSize(Int)

    /// The bytes are too short to be a record of any version.
    case truncated(length: Int)

    /// The record was written in a format version this library cannot read.
    case unsupportedVersion(UInt8)

    /// The checksum stored in the record does not match its contents: the
    /// record was damaged or cut short.
    case checksumMismatch(stored: UInt32, computed: UInt32)

    /// The checksum matched but the contents break the format's rules (a
    /// record written by a faulty writer). `offset` is where decoding stopped.
    case malformed(offset: Int, reason: String)

    /// A human-readable explanation of the error.
    public var description: String {
        switch self {
        case .emptyKey(let index):
            "operation \(index) has an empty key (keys are 1...\(WhyCacheLimits.maximumKeyLength) bytes)"
        case .keyTooLong(let index, let length):
            "operation \(index) has a \(length)-byte key; the maximum is \(WhyCacheLimits.maximumKeyLength) bytes"
        case .valueTooLong(let index, let length):
            "operation \(index) has a \(length)-byte value; the maximum is \(WhyCacheLimits.maximumValueLength) bytes"
        case .noOperations:
            "a log record must hold at least one operation"
        case .operationTooLarge(let index, let size, let maximum):
            "operation \(index) needs a \(size)-byte record on its own, more than the maximum record size of \(maximum) bytes; nothing was written"
        case .invalidMaximumRecordSize(let size):
            "a maximum record size of \(size) bytes is outside \(LogRecordSplitter.allowedMaximumRecordSizes)"
        case .truncated(let length):
            "a \(length)-byte log record is shorter than the smallest possible record"
        case .unsupportedVersion(let version):
            "log record format version \(version) is not supported (this library reads version \(LogRecordFormat.version))"
        case .checksumMismatch(let stored, let computed):
            "log record checksum mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)); the record is damaged or truncated"
        case .malformed(let offset, let reason):
            "malformed log record at byte \(offset): \(reason)"
        }
    }
}
