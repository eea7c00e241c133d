/// What a snapshot that was written, read or restored held, and its size.
public struct SnapshotSummary: Sendable, Hashable {
    /// The snapshot's header: update id, key count, commit time, prefixes.
    public var header: SnapshotHeader
    /// The length of the snapshot stream itself (docs/FORMAT.md section 6),
    /// before compression.
    public var streamBytes: UInt64
    /// The bytes handed to the sink or taken from the source: equal to
    /// ``streamBytes`` when the snapshot is not compressed.
    public var transferredBytes: UInt64

    /// A summary.
    public init(header: SnapshotHeader, streamBytes: UInt64, transferredBytes: UInt64) {
        self.header = header
        self.streamBytes = streamBytes
        self.transferredBytes = transferredBytes
    }
}
