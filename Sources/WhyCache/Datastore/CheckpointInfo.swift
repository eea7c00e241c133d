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

    /// Creates a description of a checkpoint.
    public init(updateID: UInt64, recordCount: UInt64, byteCount: UInt64) {
        self.updateID = updateID
        self.recordCount = recordCount
        self.byteCount = byteCount
    }
}
