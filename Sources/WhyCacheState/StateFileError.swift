/// An error from the shared-state file.
///
/// Every failure the state layer can meet is one of these cases: bad input is
/// rejected before anything changes, and a damaged file is reported, never
/// trusted. The state file is a cache of the change log; when opening or
/// reading reports ``corrupted(path:reason:)``, ``truncated(path:size:required:)``,
/// ``notAStateFile(path:)``, ``unsupportedFormatVersion(path:found:supported:)``,
/// ``unsupportedCreationFlags(path:flags:)`` or
/// ``notDurableAcrossRestart(path:)``, discard the file with
/// ``SharedStateFile/remove(at:)`` and rebuild it from the log.
public enum StateFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key is empty or longer than ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    case invalidKeyLength(Int)
    /// The value is longer than ``/WhyCacheSupport/WhyCacheLimits/maximumValueLength``.
    case valueTooLong(Int)
    /// The file does not start with the WhyCache magic bytes.
    case notAStateFile(path: String)
    /// The file was written by a different, incompatible format version
    /// (this library reads versions 1 through `supported`).
    case unsupportedFormatVersion(path: String, found: UInt32, supported: UInt32)
    /// The file's header sets creation flags this library does not know: a
    /// newer version wrote it with a feature this one cannot honour.
    case unsupportedCreationFlags(path: String, flags: UInt32)
    /// The file is shorter than its own header says it must be.
    case truncated(path: String, size: Int, required: Int)
    /// A checksum does not match or a structure points outside the file.
    case corrupted(path: String, reason: String)
    /// The last commit was made without `fsync` on an earlier boot of this
    /// machine, so an operating-system crash may have lost part of it.
    case notDurableAcrossRestart(path: String)
    /// Every reader slot of the file is taken (see ``SharedStateFile/Options/readerSlotCount``),
    /// or this process holds too many snapshots of it at once.
    case tooManyReaders(limit: Int)
    /// The file would grow past ``SharedStateFile/Options/maximumFileSize``.
    case fileFull(path: String, limit: Int)
    /// A transaction tried to store a key that does not start with one of
    /// the file's subscribed prefixes (``SharedStateFile/subscribedPrefixes``),
    /// before anything changed.
    case keyOutsideSubscription(path: String)
    /// A transaction tried to move the update id backwards.
    case updateIDMovedBackwards(current: UInt64, proposed: UInt64)
    /// The transaction was already committed or abandoned.
    case transactionFinished
    /// An earlier operation of the transaction failed midway; the transaction
    /// can only be abandoned.
    case transactionInvalidated
    /// The state file was closed in this process.
    case closed(path: String)
    /// ``SharedStateFile/Options`` hold a value outside its allowed range.
    case invalidOptions(reason: String)
    /// The state file exists but this process may not write to it (its
    /// permissions, or a read-only mount). Reading needs write access too:
    /// a reader registers in the file's reader table (docs/FORMAT.md
    /// section 1.3), which keeps the blocks it reads from being reused.
    case needsWriteAccess(path: String, errno: Int32)
    /// An operating-system call failed.
    case systemCallFailed(call: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidKeyLength(let length):
            return "invalid key length \(length): keys are \(WhyCacheLimits.minimumKeyLength)...\(WhyCacheLimits.maximumKeyLength) bytes"
        case .valueTooLong(let length):
            return "value of \(length) bytes exceeds the limit of \(WhyCacheLimits.maximumValueLength) bytes"
        case .notAStateFile(let path):
            return "\(path) is not a WhyCache state file"
        case .unsupportedFormatVersion(let path, let found, let supported):
            return "\(path) has state-file format version \(found); this library reads versions 1 to \(supported)"
        case .unsupportedCreationFlags(let path, let flags):
            return "\(path) uses state-file features this library does not know (creation flags 0x\(String(flags, radix: 16)))"
        case .keyOutsideSubscription(let path):
            return "the key does not start with one of the prefixes \(path) subscribes to"
        case .truncated(let path, let size, let required):
            return "\(path) is truncated: \(size) bytes, at least \(required) required"
        case .corrupted(let path, let reason):
            return "\(path) is corrupted: \(reason)"
        case .notDurableAcrossRestart(let path):
            return "\(path) was last written without fsync before the machine restarted; rebuild it from the log"
        case .invalidOptions(let reason):
            return "invalid state-file options: \(reason)"
        case .tooManyReaders(let limit):
            return "too many concurrent readers (limit \(limit))"
        case .fileFull(let path, let limit):
            return "\(path) would grow past its maximum size of \(limit) bytes"
        case .updateIDMovedBackwards(let current, let proposed):
            return "update id may not move backwards (from \(current) to \(proposed))"
        case .transactionFinished:
            return "the write transaction was already committed or abandoned"
        case .transactionInvalidated:
            return "an operation of the write transaction failed; it can only be abandoned"
        case .closed(let path):
            return "\(path) was closed"
        case .needsWriteAccess(let path, let code):
            return "\(path) cannot be opened for writing (\(SystemCallError.describe(errno: code))): readers of a state file "
                + "register in its reader table, so reading needs write access too; copy the file to writable storage, "
                + "or restore a snapshot there"
        case .systemCallFailed(let call, let path, let code):
            return "\(call)(\(path)) failed: \(SystemCallError.describe(errno: code)) (errno \(code))"
        }
    }
}

extension StateFileError {
    /// Whether this error, met opening the file at a path, says that the
    /// file is a state file that cannot be used — damaged, of another format
    /// version or with features unknown to this library, or not durable
    /// across the machine's restart — so that it may
    /// be replaced by a new one. A file that is not a state file
    /// (``notAStateFile(path:)``) never is: it may be anyone's data.
    package var marksUnusableStateFile: Bool {
        switch self {
        case .corrupted, .truncated, .unsupportedFormatVersion, .unsupportedCreationFlags, .notDurableAcrossRestart: true
        default: false
        }
    }
}

import Glibc
import WhyCacheSupport

extension StateFileError: SystemCallFailure {
    /// A failed system call of the state layer, as ``systemCallFailed(call:path:errno:)``.
    package init(systemCall failure: SystemCallError) {
        self = .systemCallFailed(call: failure.call, path: failure.path, errno: failure.errno)
    }
}
