/// One page of the log, with what the datastore knew about the log's end
/// when it read the page (``Datastore/readPage(after:through:limits:)``).
///
/// The extra knowledge saves round trips: a reader that learns that the page
/// reaches the end of the log does not ask for the next page, and the
/// newest id gives the reader's lag without a second request.
public struct LogPage: Sendable, Hashable {
    /// The records of the page, in id order (see
    /// ``Datastore/readRecords(after:through:limits:)``).
    public var entries: [LogEntry]

    /// The id of the newest record of the log as of the read, when the
    /// datastore learned it with the page; `nil` when it did not.
    ///
    /// It may be older than what ``Datastore/latestUpdateID()`` answers a
    /// moment later, never newer than the log.
    public var newestUpdateID: UInt64?

    /// Whether no record after the page (and within the requested range)
    /// existed when the page was read. `false` when the datastore does not
    /// know; then the reader asks for the next page as usual.
    public var reachesEnd: Bool

    /// The last four bytes (as a little-endian u32) of the payload of the
    /// record whose id is the page's `after` — the reader's position — when
    /// the datastore learned them with the page at little cost; nil when it
    /// did not, or when that record does not exist (`after` is 0, or the
    /// record was removed or compacted away). Datastores treat payloads as
    /// opaque bytes; for a log record these four bytes are its CRC-32C
    /// (docs/FORMAT.md section 3.1), so they tell one record's contents
    /// from another's.
    ///
    /// ``SharedCache`` compares them with the checksum of the record its
    /// state applied last: a difference means that the log changed under
    /// the state (a record rewritten, a damaged log repaired by hand, a log
    /// restored from an older copy and written on since), and the state is
    /// rebuilt instead of moving on from a record it no longer matches
    /// (``CacheError/logChanged(updateID:)``).
    public var precedingRecordChecksum: UInt32?

    /// A page of `entries`.
    public init(
        entries: [LogEntry], newestUpdateID: UInt64? = nil, reachesEnd: Bool = false, precedingRecordChecksum: UInt32? = nil
    ) {
        self.entries = entries
        self.newestUpdateID = newestUpdateID
        self.reachesEnd = reachesEnd
        self.precedingRecordChecksum = precedingRecordChecksum
    }
}
