import Synchronization
import WhyCache

/// The page that the newest append read right after its commit, in the same
/// request (``MySQLAppendRequest``), kept to answer the read that follows a
/// write — the cache's read-your-writes step — without another round trip.
///
/// An append reads the page after ``readerPosition``: where this
/// datastore's reader is believed to be (the end of the last page it
/// returned, or of its own last append, whichever is newer). The writer's
/// next read asks for the page after its position; when that position lies
/// inside the stored page, the rest of the page answers it.
///
/// **Why a stored page is a correct answer.** It was read by one statement
/// after the append committed, so it holds every record in
/// `(after, last_update_id]` that existed at that moment (docs/FORMAT.md
/// §4.3: no record below a visible one is missing), minus records compaction
/// had replaced by newer ones it also holds. Its tail after any position
/// `p >= after` is therefore what a read after `p` at that moment would have
/// returned.
///
/// **Invariant: a page answers at most one read, and only the first read of
/// the log after it was stored.** It is dropped when it answers, when a read
/// of the log goes to a server (whose answer is newer), and when a newer
/// append's page replaces it; and it answers only while its counter row is
/// at least as new as every answer this datastore has given (answers never
/// move backwards, docs/FORMAT.md §4.6), when it covers the caller's
/// `through`, when its tail is not empty (an empty page means "nothing new",
/// which only a fresh read can say), and when the tail fits the caller's
/// limits. So it stands in only for the read that follows a write — the
/// writer's read-your-writes step — never for a later poll.
final class MySQLRecentPage: Sendable {
    /// A page read by an append, with the position it was read after.
    struct Stored: Sendable {
        /// The position the page was read after.
        var after: UInt64
        /// The records in `(after, meta.lastUpdateID]`.
        var entries: [LogEntry]
        /// The counter row read with them.
        var meta: MySQLLogTable.Meta
        /// The last four bytes of record `after`, read with the page.
        var precedingRecordChecksum: UInt32?
    }

    private struct State {
        var page: Stored?
        var readerPosition: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Where the next append reads its page from.
    var readerPosition: UInt64 {
        state.withLock { $0.readerPosition }
    }

    /// Notes that a reader of this datastore reached `position` (a page it
    /// was given ends there), or that this datastore's append, which its
    /// writer then applies, ends there. Positions only move forward.
    func noteReaderPosition(_ position: UInt64) {
        state.withLock { $0.readerPosition = max($0.readerPosition, position) }
    }

    /// Keeps `page`, read after `after`, unless a newer page is kept already.
    func store(_ page: MySQLLogTable.PageRead, after: UInt64) {
        state.withLock { state in
            if let kept = state.page, kept.meta.lastUpdateID > page.meta.lastUpdateID { return }
            state.page = Stored(after: after, entries: page.entries, meta: page.meta, precedingRecordChecksum: page.precedingRecordChecksum)
        }
    }

    /// Drops the stored page: a read of the log from a server begins, whose
    /// answer is newer.
    func drop() {
        state.withLock { $0.page = nil }
    }

    /// The page after `after` through `through` that the stored page
    /// answers, or `nil` (see the type's rules). A page answers one read:
    /// it is dropped once it did.
    ///
    /// - Parameter newestSeen: The newest id any answer of this datastore
    ///   has shown so far.
    func take(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits, newestSeen: UInt64
    ) -> (page: LogPage, meta: MySQLLogTable.Meta)? {
        state.withLock { state -> (page: LogPage, meta: MySQLLogTable.Meta)? in
            guard let stored = state.page, stored.after <= after, stored.meta.lastUpdateID >= max(newestSeen, through ?? 0) else {
                return nil
            }
            let upper = through ?? .max
            let tail = stored.entries.drop { $0.updateID <= after }.prefix { $0.updateID <= upper }
            guard let last = tail.last, tail.count <= limits.maximumCount,
                tail.reduce(0, { $0 + $1.payload.count }) <= limits.maximumBytes
            else { return nil }
            let end = min(stored.meta.lastUpdateID, upper)
            // Record `after` is the one the page was read after, or one of its entries.
            let preceding = after == stored.after
                ? stored.precedingRecordChecksum
                : stored.entries.first { $0.updateID == after }.flatMap { LogRecordFormat.trailingChecksum(of: $0.payload) }
            let page = LogPage(
                entries: Array(tail), newestUpdateID: stored.meta.lastUpdateID, reachesEnd: last.updateID >= end,
                precedingRecordChecksum: preceding)
            state.page = nil
            return (page, stored.meta)
        }
    }
}
