/// Why an operation of a ``SharedCache`` failed.
///
/// Invalid input (``invalidKey(length:)``, ``valueTooLong(length:)``,
/// ``recordTooLarge(size:maximum:)``, ``invalidConfiguration(reason:)``) is
/// rejected before anything is written anywhere. Failures of the layers below
/// keep their own typed error: ``stateFile(_:)`` for the shared file,
/// ``datastore(_:)`` for the log.
public enum CacheError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A key is empty or longer than ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    case invalidKey(length: Int)

    /// A value is longer than ``/WhyCacheSupport/WhyCacheLimits/maximumValueLength``.
    case valueTooLong(length: Int)

    /// One key and its value encode to a record of `size` bytes, more than the
    /// cache's ``SharedCache/Configuration/maximumRecordSize`` (`maximum`).
    /// Nothing of the write was appended.
    case recordTooLarge(size: Int, maximum: Int)

    /// The cache was configured with values it cannot work with.
    case invalidConfiguration(reason: String)

    /// The value codec could not encode or decode a value. `key` is the key
    /// involved, as text when it is UTF-8 and as hex otherwise.
    case codecFailed(key: String, reason: String)

    /// The log record with id `updateID` could not be decoded. The local state
    /// holds everything before it and stops there: a corrupt record is never
    /// skipped.
    case corruptRecord(updateID: UInt64, LogRecordError)

    /// The records after the local state's position were removed from the log
    /// by a history rewrite; the state has to be rebuilt from a checkpoint.
    case historyRewritten(localUpdateID: UInt64, firstRetainedUpdateID: UInt64)

    /// The log no longer holds the record the local state applied last,
    /// `updateID`: the record with that id now has other contents (the log
    /// was changed under the state — a record rewritten, a damaged log
    /// repaired by hand, a log restored from an older backup and written on
    /// since). An update rebuilds the state from the log (its latest
    /// checkpoint, or its first record) instead of moving on from there; this
    /// error reaches the caller only when no rebuild is possible (the log has
    /// no checkpoint and no longer starts at its first record), and the state
    /// keeps serving what it holds.
    case logChanged(updateID: UInt64)

    /// The local state is at an update id the log has never reached: it was
    /// built from another log (or the log was recreated). Remove the state
    /// file (``SharedCache/removeStateFile()``) to rebuild it from this log.
    case stateAheadOfLog(localUpdateID: UInt64, latestUpdateID: UInt64)

    /// The write was appended to the log as `updateID`, so it is durable and
    /// every machine will apply it, but applying it to the local state failed
    /// (`reason`); until a later ``SharedCache/update(through:)`` succeeds,
    /// this machine may not show it yet.
    case writtenButNotApplied(updateID: UInt64, reason: String)

    /// The cache was closed with ``SharedCache/close()``.
    case closed(path: String)

    /// The state file at `path` subscribes to other key prefixes than the
    /// cache's configuration (``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes``);
    /// both lists are in canonical form, empty meaning every key. The file
    /// was left as it is: other processes may use it with its prefixes. Use
    /// another path, or remove the file to have it created with the
    /// configured prefixes.
    case subscriptionMismatch(path: String, stateFilePrefixes: [[UInt8]], configuredPrefixes: [[UInt8]])

    /// ``StateVerifier`` could not bring the shared state and its replay of
    /// the log to one update id in `rounds` rounds: writers kept the log
    /// moving. Nothing was compared; try again when the log is quieter.
    case verificationDidNotSettle(rounds: Int)

    /// A scratch file of a build of the state from the log — a sorted run
    /// that ``HistoryRewriter`` writes under its scratch directory — could
    /// not be written or read back (`reason`: the system call and its
    /// error, or what the file held). The build stopped there and its
    /// scratch files are removed; the log and the state files it serves
    /// are untouched.
    case scratchFileFailed(path: String, reason: String)

    /// The cache found one of its own invariants broken (`reason` says
    /// which): a defect in WhyCache, never the caller's input or a state of
    /// the file or the log. The operation that found it stopped there;
    /// please report it with the reason.
    case internalInconsistency(reason: String)

    /// The shared-state file failed.
    case stateFile(StateFileError)

    /// The datastore failed.
    case datastore(DatastoreError)

    /// A human-readable explanation of the error.
    public var description: String {
        switch self {
        case .invalidKey(let length):
            "invalid key length \(length): keys are \(WhyCacheLimits.minimumKeyLength)...\(WhyCacheLimits.maximumKeyLength) bytes"
        case .valueTooLong(let length):
            "value of \(length) bytes exceeds the limit of \(WhyCacheLimits.maximumValueLength) bytes"
        case .recordTooLarge(let size, let maximum):
            "one key and value need a log record of \(size) bytes, more than the maximum record size of \(maximum) bytes; nothing was written"
        case .invalidConfiguration(let reason):
            "invalid cache configuration: \(reason)"
        case .codecFailed(let key, let reason):
            "the value codec failed for key \(key): \(reason)"
        case .corruptRecord(let updateID, let error):
            "log record \(updateID) is corrupt: \(error)"
        case .historyRewritten(let local, let first):
            "the local state is at update \(local) but the log now starts at \(first): history was rewritten, rebuild from a checkpoint"
        case .logChanged(let updateID):
            "log record \(updateID), the last one the local state applied, has changed in the log: the state must be rebuilt from the log"
        case .stateAheadOfLog(let local, let latest):
            "the local state is at update \(local) but the log ends at \(latest): the state was built from another log"
        case .writtenButNotApplied(let updateID, let reason):
            "the write was logged as update \(updateID) but could not be applied locally yet: \(reason)"
        case .closed(let path):
            "the cache for \(path) is closed"
        case .subscriptionMismatch(let path, let held, let configured):
            "\(path) subscribes to \(KeyPrefixes.describe(held)), but the cache is configured for \(KeyPrefixes.describe(configured))"
        case .verificationDidNotSettle(let rounds):
            "the log kept moving: the state and its replay did not meet at one update id in \(rounds) rounds; nothing was compared"
        case .scratchFileFailed(let path, let reason):
            "the scratch file \(path) of a build from the log failed: \(reason)"
        case .internalInconsistency(let reason):
            "internal inconsistency in the cache (a defect in WhyCache): \(reason)"
        case .stateFile(let error):
            error.description
        case .datastore(let error):
            error.description
        }
    }
}

extension CacheError {
    /// Whether an update that failed with this error rebuilds the state from
    /// the log and tries again: history was rewritten past the state, or the
    /// log changed under it.
    var callsForRebuild: Bool {
        switch self {
        case .historyRewritten, .logChanged: true
        default: false
        }
    }

    /// Whether this error says that a history rewrite removed records or a
    /// checkpoint while they were being read — worth starting over from the
    /// newer checkpoint.
    var meansHistoryMovedOn: Bool {
        switch self {
        case .historyRewritten, .datastore(.historyRewritten), .datastore(.checkpointNotFound): true
        default: false
        }
    }

    /// The cache error for a state-file error: key and value limits become
    /// ``invalidKey(length:)`` and ``valueTooLong(length:)``, the rest is
    /// wrapped in ``stateFile(_:)``.
    init(_ error: StateFileError) {
        switch error {
        case .invalidKeyLength(let length): self = .invalidKey(length: length)
        case .valueTooLong(let length): self = .valueTooLong(length: length)
        default: self = .stateFile(error)
        }
    }

    /// The cache error for a sorted run (a scratch file) that failed.
    init(_ error: SortedRunError) {
        self = .scratchFileFailed(path: error.path, reason: error.description)
    }

    /// The cache error for a record that a write could not encode.
    init(encoding error: LogRecordError) {
        switch error {
        case .emptyKey: self = .invalidKey(length: 0)
        case .keyTooLong(_, let length): self = .invalidKey(length: length)
        case .valueTooLong(_, let length): self = .valueTooLong(length: length)
        case .operationTooLarge(_, let size, let maximum): self = .recordTooLarge(size: size, maximum: maximum)
        default: self = .invalidConfiguration(reason: "the log record could not be built: \(error)")
        }
    }

    /// Text naming `key` in messages (`Hex/describe(_:)`).
    static func describe(key: some Sequence<UInt8>) -> String {
        Hex.describe(key)
    }
}
