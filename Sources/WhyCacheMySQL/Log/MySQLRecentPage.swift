import WhyCache

/// What this datastore knows the log holds right after its own appends,
/// kept to answer the read that follows a write — the cache's
/// read-your-writes step — without another round trip (docs/FORMAT.md §4.3).
///
/// Two sources answer it:
///
/// - **The datastore's own appends.** When every id in `(p, e]` was handed
///   to this datastore's appends (which all committed), the log held, at the
///   moment the append of `e` committed, exactly those records minus the
///   single-key records that a later one of them replaced (compaction, §4.5,
///   deletes an older single-key record exactly when a later single-key
///   record of the same key is appended). So the page after `p` through `e`
///   is known without reading it: it is what a read after `p` would have
///   returned at that moment, the end of the log then being `e`.
/// - **A page an append read after its commit** (in the same request), for
///   when other writers' records lie between the reader and the append: one
///   statement read it, so it holds every record in its range that existed
///   at that moment (§4.3's invariant), and its tail after any later
///   position is what a read after that position would have returned.
///   Appends ask for it (``pageAfterForNextAppend``) only after a read that
///   the appends alone could not answer: a lone writer pays no page read.
///
/// **Invariant: it answers only the first read of the log after an append.**
/// What answered a read is dropped, and so is everything when a read of the
/// log goes to a server (whose answer is newer). It answers only while its
/// end is at least as new as every answer this datastore has given (answers
/// never move backwards, §4.6) and as the newest id its own appends
/// received (a writer reads its own writes), when it covers the caller's `through`, when
/// the answer is not empty (an empty page means "nothing new", which only a
/// fresh read can say) and fits the caller's limits, and when no removal of
/// history that this datastore has seen lies after the caller's position.
/// So it stands in only for the read that follows a write, never for a
/// later poll.
final class MySQLRecentPage: Sendable {
    /// A committed append of this datastore: its ids and the records the
    /// log held under them right after its commit.
    private struct Append {
        /// Its first and last id.
        var ids: ClosedRange<UInt64>
        /// Its inserted records, in id order, with the key of each
        /// single-key record (compaction on).
        var records: [(entry: LogEntry, singleKey: [UInt8]?)]
        /// The payload bytes of ``records``.
        var bytes: Int
    }

    /// A page read by an append, with the position it was read after.
    private struct ReadPage {
        var after: UInt64
        var entries: [LogEntry]
        var meta: MySQLLogTable.Meta
        /// The last four bytes of record `after`, read with the page.
        var precedingRecordChecksum: UInt32?
    }

    private struct State {
        /// Committed appends not yet used to answer a read, by first id.
        var appends: [Append] = []
        /// The newest page an append read.
        var page: ReadPage?
        /// Where this datastore's reader is believed to be: the end of the
        /// last page it was given, or of its own last append.
        var readerPosition: UInt64 = 0
        /// Whether the last read after an append needed records of other
        /// writers: then appends read the page after ``readerPosition``.
        var othersWrite = false
        /// The newest id this datastore's appends received: no answer ends
        /// before it (the writer reads its own writes).
        var newestAppended: UInt64 = 0
    }

    /// The most payload bytes of appends kept; older appends go first.
    private static let maximumBytes = 8 << 20

    /// The most records of appends kept; older appends go first.
    private static let maximumRecords = 4_096

    private let state = Locked(State())

    init() {}

    /// The position after which the next append reads a page, or `nil`
    /// when appends need not read one (the reads after them were answered
    /// by the appends themselves).
    var pageAfterForNextAppend: UInt64? {
        state.withLock { $0.othersWrite ? $0.readerPosition : nil }
    }

    /// Notes that a reader of this datastore reached `position` (a page it
    /// was given ends there). Positions only move forward.
    func noteReaderPosition(_ position: UInt64) {
        state.withLock { $0.readerPosition = max($0.readerPosition, position) }
    }

    /// Keeps what the committed append of `payloads` under `ids`, written
    /// as `plan` says, left in the log, and the page it read after
    /// `pageAfter`, if any.
    func record(ids: [UInt64], payloads: [[UInt8]], plan: MySQLAppendPlan, page: MySQLLogTable.PageRead?, pageAfter: UInt64?) {
        guard let first = ids.first, let last = ids.last else { return }
        var records: [(entry: LogEntry, singleKey: [UInt8]?)] = []
        var bytes = 0
        for (index, record) in plan.records.enumerated() where record.isInserted {
            records.append((LogEntry(updateID: ids[index], payload: payloads[index]), record.singleKey?.key))
            bytes += payloads[index].count
        }
        state.withLock { state in
            state.readerPosition = max(state.readerPosition, last)
            state.newestAppended = max(state.newestAppended, last)
            let position = state.appends.firstIndex { $0.ids.lowerBound > first } ?? state.appends.count
            state.appends.insert(Append(ids: first...last, records: records, bytes: bytes), at: position)
            var keptBytes = state.appends.reduce(0) { $0 + $1.bytes }
            var keptRecords = state.appends.reduce(0) { $0 + $1.records.count }
            while state.appends.count > 1, keptBytes > Self.maximumBytes || keptRecords > Self.maximumRecords {
                keptBytes -= state.appends[0].bytes
                keptRecords -= state.appends[0].records.count
                state.appends.removeFirst()
            }
            if let page, let pageAfter, page.meta.lastUpdateID >= state.page?.meta.lastUpdateID ?? 0 {
                state.page = ReadPage(
                    after: pageAfter, entries: page.entries, meta: page.meta, precedingRecordChecksum: page.precedingRecordChecksum)
            }
        }
    }

    /// Drops everything kept: a read of the log from a server begins, whose
    /// answer is newer.
    func drop() {
        state.withLock { state in
            state.appends = []
            state.page = nil
        }
    }

    /// The page after `after` through `through` that what is kept answers,
    /// with the counter row it stands for, or `nil` (see the type's rules).
    /// What answered is dropped.
    ///
    /// - Parameter seen: The newest counter row any answer of this datastore
    ///   has shown so far.
    func take(
        after: UInt64, through: UInt64?, limits: DatastorePageLimits, seen: MySQLReadRouter.Position
    ) -> (page: LogPage, meta: MySQLLogTable.Meta)? {
        state.withLock { state -> (page: LogPage, meta: MySQLLogTable.Meta)? in
            guard seen.removedThrough <= after else { return nil }
            let floor = max(seen.lastUpdateID, through ?? 0, state.newestAppended)
            if let answer = Self.fromAppends(&state, after: after, through: through, limits: limits, floor: floor) {
                state.othersWrite = false
                return answer
            }
            // Appends after the reader that do not reach back to it: other
            // writers' records lie in between.
            if state.appends.contains(where: { $0.ids.upperBound > after }) { state.othersWrite = true }
            return Self.fromReadPage(&state, after: after, through: through, limits: limits, floor: floor)
        }
    }

    /// The answer the appends give: the records in `(after, e]`, where every
    /// id in that range was handed to them, minus those a later single-key
    /// record of the same key in the range replaced.
    private static func fromAppends(
        _ state: inout State, after: UInt64, through: UInt64?, limits: DatastorePageLimits, floor: UInt64
    ) -> (page: LogPage, meta: MySQLLogTable.Meta)? {
        // The end of the ids handed to the appends from `after + 1` on, without a gap.
        var end = after
        var covering: [Append] = []
        for append in state.appends where append.ids.upperBound > end {
            guard append.ids.lowerBound <= end + 1 else { break }
            end = append.ids.upperBound
            covering.append(append)
        }
        guard end > after, end >= floor else { return nil }
        let records = covering.flatMap(\.records).filter { $0.entry.updateID > after }
        // A single-key record is in the log at `end` unless a later one of its key is.
        var newest: [[UInt8]: UInt64] = [:]
        for record in records {
            if let key = record.singleKey { newest[key] = record.entry.updateID }
        }
        let upper = through ?? .max
        let entries = records.filter { record in
            record.entry.updateID <= upper && record.singleKey.map { newest[$0] == record.entry.updateID } ?? true
        }.map(\.entry)
        guard let last = entries.last, fits(entries, limits) else { return nil }
        // Record `after`, when this datastore appended it: what it wrote is
        // what the log holds there (or held before compaction replaced it).
        let preceding = state.appends.lazy.flatMap(\.records).first { $0.entry.updateID == after }
            .flatMap { LogRecordFormat.trailingChecksum(of: $0.entry.payload) }
        state.appends.removeAll { $0.ids.upperBound <= end }
        let meta = MySQLLogTable.Meta(lastUpdateID: end, removedThrough: 0)
        return (
            LogPage(
                entries: entries, newestUpdateID: end, reachesEnd: last.updateID >= min(end, upper),
                precedingRecordChecksum: preceding),
            meta
        )
    }

    /// The answer the page an append read gives: its tail after `after`.
    private static func fromReadPage(
        _ state: inout State, after: UInt64, through: UInt64?, limits: DatastorePageLimits, floor: UInt64
    ) -> (page: LogPage, meta: MySQLLogTable.Meta)? {
        guard let stored = state.page, stored.after <= after, stored.meta.lastUpdateID >= floor else { return nil }
        let upper = through ?? .max
        let tail = Array(stored.entries.drop { $0.updateID <= after }.prefix { $0.updateID <= upper })
        guard let last = tail.last, fits(tail, limits) else { return nil }
        let preceding = after == stored.after
            ? stored.precedingRecordChecksum
            : stored.entries.first { $0.updateID == after }.flatMap { LogRecordFormat.trailingChecksum(of: $0.payload) }
        state.page = nil
        state.appends.removeAll { $0.ids.upperBound <= stored.meta.lastUpdateID }
        let end = min(stored.meta.lastUpdateID, upper)
        return (
            LogPage(
                entries: tail, newestUpdateID: stored.meta.lastUpdateID, reachesEnd: last.updateID >= end,
                precedingRecordChecksum: preceding),
            stored.meta
        )
    }

    /// Whether `entries` fit in one page of `limits`.
    private static func fits(_ entries: [LogEntry], _ limits: DatastorePageLimits) -> Bool {
        entries.count <= limits.maximumCount && entries.reduce(0) { $0 + $1.payload.count } <= limits.maximumBytes
    }
}
