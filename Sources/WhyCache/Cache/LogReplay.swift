/// One run of ``SharedCache/update(through:)`` once it holds the state
/// file's writer lock: applies pages of log records in order, in
/// transactions of at most ``SharedCache/Configuration/maximumOperationsPerTransaction``
/// operations, and counts what it did in ``summary``.
///
/// **Exactness.** A transaction may commit only a position whose state
/// equals a replay of the log through it. A datastore that compacts the log
/// leaves holes where a record was replaced by a later one of the same key
/// (see ``Datastore``); until that later record is applied, the position
/// overstates the state. So once a page shows a hole, the run is no longer
/// exact: it stops committing at the operation bound and reads on to the end
/// of the available log, which holds every replacement, before it commits.
///
/// **Invariant.** Every committed position is a prefix of the log: a
/// transaction commits at the operation bound only while the run is exact,
/// and at the end (``finish()``) or after a failure
/// (``keepAppliedPrefix()``) only when it is exact or reached the end.
struct LogReplay {
    /// The transaction records are applied to. Replaced by a new one each
    /// time a full one commits; another process may have moved the state on
    /// in between.
    private(set) var transaction: WriteTransaction

    /// What the run did so far.
    private(set) var summary: UpdateSummary

    /// Whether no hole has been seen: see the type's discussion.
    private(set) var isExact = true

    /// The operations applied in ``transaction``.
    private var operationsInTransaction = 0

    /// The operations after which an exact run commits and begins anew.
    private let maximumOperationsPerTransaction: Int

    /// Begins the next transaction, waiting for the writer lock.
    private let beginTransaction: () async throws(CacheError) -> WriteTransaction

    /// A run applying to `transaction`, whose summary starts as `summary`,
    /// committing every `maximumOperationsPerTransaction` operations and
    /// starting the next transaction with `beginTransaction`.
    init(
        transaction: WriteTransaction, summary: UpdateSummary, maximumOperationsPerTransaction: Int,
        beginTransaction: @escaping () async throws(CacheError) -> WriteTransaction
    ) {
        self.transaction = transaction
        self.summary = summary
        self.maximumOperationsPerTransaction = maximumOperationsPerTransaction
        self.beginTransaction = beginTransaction
    }

    /// The entries of a page that the state does not hold yet (another
    /// process may have applied some while this one waited for the lock).
    /// Notes a hole among them: from then on the run is not exact.
    mutating func unapplied(_ entries: [LogEntry]) -> ArraySlice<LogEntry> {
        let pending = entries.drop { $0.updateID <= transaction.updateID }
        if isExact, Self.hasHole(pending, after: transaction.updateID) { isExact = false }
        return pending
    }

    /// Applies `entries` in order, committing and beginning a new
    /// transaction each time an exact run reaches the operation bound.
    ///
    /// - Throws: the first corrupt record's error (the records before it
    ///   stay applied), or a failure of the state file.
    mutating func apply(_ entries: ArraySlice<LogEntry>) async throws(CacheError) {
        var pending = entries
        while !pending.isEmpty {
            let budget = isExact ? maximumOperationsPerTransaction - operationsInTransaction : .max
            let application = try transaction.apply(pending, operationBudget: budget)
            pending = pending.dropFirst(application.records)
            summary.recordsApplied += application.records
            summary.operationsApplied += application.operations
            operationsInTransaction += application.operations
            if let failure = application.failure { throw failure }
            if isExact, operationsInTransaction >= maximumOperationsPerTransaction {
                do { try transaction.commitInitialized() } catch { throw CacheError(error) }
                summary.transactionsCommitted += 1
                transaction = try await beginTransaction()
                operationsInTransaction = 0
                // Another process may have moved the state on meanwhile.
                pending = pending.drop { $0.updateID <= transaction.updateID }
            }
        }
    }

    /// Notes the log's newest id as a page read reported it.
    mutating func noteNewest(_ updateID: UInt64) {
        summary.newestLogUpdateID = max(summary.newestLogUpdateID ?? 0, updateID)
    }

    /// Whether the run has reached `target`, where it stops (never while it
    /// is not exact: the replacements of a hole may lie beyond).
    func hasReached(_ target: UInt64?) -> Bool {
        guard isExact, let target else { return false }
        return transaction.updateID >= target
    }

    /// After a failure: commits what was applied when it is a prefix of the
    /// log. A transaction that failed midway (the state file) is invalid and
    /// commits nothing, and neither does one that stopped inside a hole.
    mutating func keepAppliedPrefix() {
        if isExact, (try? transaction.commitInitialized()) != nil, transaction.updateID > transaction.baseUpdateID {
            summary.transactionsCommitted += 1
        }
    }

    /// Commits the last transaction (which marks the state initialized) and
    /// returns the run's summary.
    mutating func finish() throws(CacheError) -> UpdateSummary {
        let changed = transaction.updateID > transaction.baseUpdateID || !transaction.isInitialized
        do { try transaction.commitInitialized() } catch { throw CacheError(error) }
        if changed { summary.transactionsCommitted += 1 }
        summary.updateID = transaction.updateID
        return summary
    }

    /// Whether `entries`, applied after `position`, skip an id: the log was
    /// compacted there (see ``Datastore``).
    static func hasHole(_ entries: some Collection<LogEntry>, after position: UInt64) -> Bool {
        var expected = position &+ 1
        for entry in entries {
            if entry.updateID != expected { return true }
            expected = entry.updateID &+ 1
        }
        return false
    }
}
