/// Where a paged read of a checkpoint continues.
///
/// ``index`` counts the payloads already read; ``offset`` is a position whose
/// meaning belongs to the datastore (a byte offset for ``FileDatastore``).
/// Only pass positions that the same datastore returned, or ``start``.
public struct CheckpointPosition: Sendable, Hashable {
    /// The number of payloads before this position.
    public var index: UInt64

    /// A datastore-defined location of payload number ``index``.
    public var offset: UInt64

    /// The position of the first payload.
    public static let start = CheckpointPosition(index: 0, offset: 0)

    /// Creates a position.
    public init(index: UInt64, offset: UInt64) {
        self.index = index
        self.offset = offset
    }
}
