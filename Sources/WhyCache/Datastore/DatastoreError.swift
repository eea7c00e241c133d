import Glibc

/// Why a datastore operation failed.
public enum DatastoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The datastore cannot be reached at the moment (a server is down, a
    /// connection was lost). Retrying later may succeed.
    case unavailable(reason: String)

    /// The server refused the credentials, or the user lacks a permission the
    /// operation needs. `reason` names the user and server, never the password.
    case accessDenied(reason: String)

    /// The server rejected or failed a request for a reason that retrying will
    /// not fix (for example a statement the server does not support).
    case requestFailed(operation: String, reason: String)

    /// The connection broke while an append was being committed, so it is not
    /// known whether the records are in the log. They are either all there,
    /// under the ids they were given, or none is; a reader of the log sees
    /// whichever happened. Nothing was applied to any local state.
    case appendOutcomeUnknown(reason: String)

    /// A system call failed. `errno` is the error number it reported.
    case ioFailure(operation: String, path: String, errno: Int32)

    /// The location is not a datastore of this kind (not initialized, or
    /// holding something else). ``Datastore/createIfMissing()`` creates one.
    case notADatastore(path: String, reason: String)

    /// Stored data is damaged: a record or file failed its checksum or broke
    /// the format. `location` names the file and byte offset (or table and
    /// row); `updateID` is the affected or expected record when known.
    case corruptRecord(location: String, updateID: UInt64?, reason: String)

    /// The records a reader asked for were removed by a history rewrite: the
    /// oldest record left is `firstRetainedUpdateID`. The reader must rebuild
    /// its state from the latest checkpoint, then read the log after it.
    case historyRewritten(firstRetainedUpdateID: UInt64)

    /// A payload is larger than the datastore accepts; nothing was written.
    case recordTooLarge(size: Int, maximum: Int)

    /// Another holder has the maintenance lock of this log.
    case maintenanceLockHeld

    /// Records through `updateID` cannot be removed: no published checkpoint
    /// at or after `updateID` exists, so the state they produce would be lost.
    case noCheckpointCovers(updateID: UInt64)

    /// The checkpoint at `updateID` does not exist (or no longer exists).
    case checkpointNotFound(updateID: UInt64)

    /// The request does not make sense in the datastore's current state (for
    /// example a checkpoint beyond the end of the log, or using a finished writer).
    case invalidRequest(reason: String)

    /// The datastore was configured with values it cannot work with.
    case invalidConfiguration(reason: String)

    /// The datastore answered in a way the ``Datastore`` protocol rules out
    /// (`reason` says how: for example a number of update ids other than
    /// the number of records appended): a defect in the datastore's
    /// implementation, not in the request. The records may have been
    /// appended; nothing was applied on their strength.
    case contractViolated(reason: String)

    /// A human-readable explanation of the error.
    public var description: String {
        switch self {
        case .unavailable(let reason):
            "datastore unavailable: \(reason)"
        case .accessDenied(let reason):
            "access denied: \(reason)"
        case .requestFailed(let operation, let reason):
            "\(operation) failed: \(reason)"
        case .appendOutcomeUnknown(let reason):
            "the connection broke while an append was committing; the records may or may not be in the log: \(reason)"
        case .ioFailure(let operation, let path, let code):
            "\(operation) failed for \(path): \(SystemCallError.describe(errno: code)) (errno \(code))"
        case .notADatastore(let path, let reason):
            "\(path) is not a WhyCache datastore: \(reason)"
        case .corruptRecord(let location, let updateID, let reason):
            if let updateID {
                "corrupt log data at \(location) (update \(updateID)): \(reason)"
            } else {
                "corrupt log data at \(location): \(reason)"
            }
        case .historyRewritten(let first):
            "the requested records were removed by a history rewrite (the oldest record left is \(first)); rebuild from the latest checkpoint"
        case .recordTooLarge(let size, let maximum):
            "a \(size)-byte record is larger than the maximum of \(maximum) bytes; nothing was written"
        case .maintenanceLockHeld:
            "another process holds the maintenance lock of this log"
        case .noCheckpointCovers(let updateID):
            "cannot remove records through \(updateID): no published checkpoint at or after it"
        case .checkpointNotFound(let updateID):
            "no checkpoint at update \(updateID)"
        case .invalidRequest(let reason):
            "invalid datastore request: \(reason)"
        case .invalidConfiguration(let reason):
            "invalid datastore configuration: \(reason)"
        case .contractViolated(let reason):
            "the datastore broke the Datastore protocol's contract (a defect in its implementation): \(reason)"
        }
    }
}

extension DatastoreError: SystemCallFailure {
    /// A failed system call of the datastore, as ``ioFailure(operation:path:errno:)``.
    package init(systemCall failure: SystemCallError) {
        self = .ioFailure(operation: failure.call, path: failure.path, errno: failure.errno)
    }
}
