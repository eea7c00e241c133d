/// What ``StateFileRewriter/rewrite(at:)`` did.
public struct StateFileRewriteSummary: Sendable, Hashable, Codable {
    /// How a rewrite ended.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// The rewritten file is now the file at the path.
        case installed
        /// Another process replaced or removed the file at the path during
        /// the rewrite; its file was kept and the copy deleted.
        case fileReplaced
        /// Writes kept changing more keys per catch-up round than
        /// ``StateFileRewriter/maximumChangesBeforeLocking``, so the rewrite
        /// gave up rather than hold the writer lock for long; the file was
        /// left as it was and the copy deleted. Try again when writes are
        /// quieter.
        case writesDidNotSettle
    }

    /// How the rewrite ended.
    public var outcome = Outcome.installed
    /// Whether the rewritten file is now the file at the path.
    public var isInstalled: Bool { outcome == .installed }
    /// The keys of the state copied first, in key order.
    public var keysCopied = 0
    /// Catch-up rounds run without the writer lock.
    public var catchUpRounds = 0
    /// Keys changed by those rounds.
    public var changesCaughtUp = 0
    /// Times the writer lock was taken and let go again because more had
    /// changed than ``StateFileRewriter/maximumChangesUnderLock`` while the
    /// rewrite waited for it.
    public var lockAttempts = 0
    /// Keys changed under the writer lock, in the last round.
    public var changesUnderLock = 0
    /// How long the rewrite held the file's writer lock (the last changes
    /// and the install): how long writers of the file waited for it at most.
    public var writerLockNanoseconds: UInt64 = 0
    /// How long the whole rewrite took.
    public var totalNanoseconds: UInt64 = 0
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
