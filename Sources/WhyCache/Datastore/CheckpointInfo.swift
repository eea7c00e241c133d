/// A published checkpoint: the complete dataset as of one update id.
///
/// A checkpoint is stored as a sequence of log record payloads holding only
/// sets; replaying them into an empty state yields the state the log had right
/// after `updateID` was applied.
public struct CheckpointInfo: Sendable, Hashable {
    /// The update id whose resulting state the checkpoint holds.
    public var updateID: UInt64

    /// The number of payloads in the checkpoint.
    public var recordCount: UInt64

    /// The total size of the payloads, in bytes.
    public var byteCount: UInt64

    /// Whether this checkpoint and a log whose oldest record is
    /// `firstRetained` hold every record between them: the checkpoint
    /// reaches at least the record before `firstRetained`, so replaying it
    /// and then the log from `firstRetained` on misses nothing.
    ///
    /// Any pair of ids gives an answer: the ids come from outside the
    /// process (a datastore's files or rows), and no arithmetic here can
    /// overflow.
    func leavesNoGap(beforeFirstRetained firstRetained: UInt64) -> Bool {
        firstRetained <= 1 || updateID >= firstRetained - 1
    }

    /// Creates a description of a checkpoint.
    public init(updateID: UInt64, recordCount: UInt64, byteCount: UInt64) {
        self.updateID = updateID
        self.recordCount = recordCount
        self.byteCount = byteCount
    }
}
