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

    /// A page of `entries`.
    public init(entries: [LogEntry], newestUpdateID: UInt64? = nil, reachesEnd: Bool = false) {
        self.entries = entries
        self.newestUpdateID = newestUpdateID
        self.reachesEnd = reachesEnd
    }
}
