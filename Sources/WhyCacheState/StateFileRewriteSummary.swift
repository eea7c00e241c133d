/// What ``StateFileRewriter/rewrite(at:)`` did.
public struct StateFileRewriteSummary: Sendable, Hashable, Codable {
    /// Whether the rewritten file is now the file at the path; false when
    /// another process replaced or removed the file meanwhile.
    public var isInstalled = false
    /// The keys of the state copied first, in key order.
    public var keysCopied = 0
    /// Catch-up rounds run without the writer lock.
    public var catchUpRounds = 0
    /// Keys changed by those rounds.
    public var changesCaughtUp = 0
    /// Keys changed under the writer lock, in the last round.
    public var changesUnderLock = 0
    /// The keys of the installed state.
    public var keyCount = 0
    /// The update id of the installed state.
    public var updateID: UInt64 = 0
    /// The heap bytes of the old file's state (``StateFileStatistics/heapBytes``).
    public var bytesBefore = 0
    /// The heap bytes of the new file's state.
    public var bytesAfter = 0

    /// An empty summary.
    public init() {}
}
