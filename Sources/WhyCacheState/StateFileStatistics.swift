/// Counters describing a state file at one moment.
public struct StateFileStatistics: Sendable, Hashable, Codable {
    /// The update id of the current state.
    public var updateID: UInt64
    /// The number of keys in the current state.
    public var keyCount: Int
    /// The number of the last committed transaction.
    public var transaction: UInt64
    /// The size of the file in bytes.
    public var fileSize: Int
    /// The bytes of the heap carved into blocks so far.
    public var heapBytes: Int
    /// Bytes on the free lists, ready for reuse.
    public var freeBytes: Int
    /// Bytes replaced by committed transactions that wait until no reader can see them.
    public var retiredBytes: Int
    /// Reader slots held by processes (live, or dead and not yet reclaimed).
    public var readerSlotsInUse: Int
    /// The number of live processes that hold reader slots: the processes
    /// reading this file now, or that read it and still have it open.
    public var liveReaderProcesses: Int
    /// The number of reader slots in the file.
    public var readerSlotCount: Int
    /// The largest size the file may reach.
    public var maximumFileSize: Int
    /// When the current state was committed (nanoseconds since 1970).
    public var commitTimeNanoseconds: UInt64
    /// Whether the current state was built from a change log (see
    /// `WriteTransaction/markInitialized()`).
    public var isInitialized: Bool
}
