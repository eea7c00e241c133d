/// How far a snapshot being written, read or restored has got, for
/// progress reports.
///
/// Reported after each buffer of the stream (about 1 MiB) and once at the
/// end, on the thread doing the work.
public struct SnapshotProgress: Sendable, Hashable {
    /// The entries written or read so far.
    public var keysDone: Int
    /// The entries the snapshot holds in all (from its header).
    public var keyCount: Int
    /// The bytes handed to the sink or taken from the source so far: the
    /// compressed bytes, for a compressed snapshot.
    public var transferredBytes: UInt64

    /// A progress report.
    public init(keysDone: Int, keyCount: Int, transferredBytes: UInt64) {
        self.keysDone = keysDone
        self.keyCount = keyCount
        self.transferredBytes = transferredBytes
    }
}
