import Logging

/// What one ``SharedCache/update(through:)`` call did.
public struct UpdateSummary: Sendable, Hashable {
    /// The update id of the local state when the call returned.
    public var updateID: UInt64
    /// The log records this call applied (0 when another task or process had
    /// already applied them).
    public var recordsApplied: Int
    /// The set and delete operations in those records.
    public var operationsApplied: Int
    /// The state-file transactions this call committed.
    public var transactionsCommitted: Int
    /// The newest update id of the log as the datastore reported it while
    /// this call read the log (see ``LogPage/newestUpdateID``); `nil` when
    /// the call did not read the log or the datastore did not say.
    public var newestLogUpdateID: UInt64?

    /// Creates a summary.
    public init(
        updateID: UInt64, recordsApplied: Int = 0, operationsApplied: Int = 0, transactionsCommitted: Int = 0,
        newestLogUpdateID: UInt64? = nil
    ) {
        self.updateID = updateID
        self.recordsApplied = recordsApplied
        self.operationsApplied = operationsApplied
        self.transactionsCommitted = transactionsCommitted
        self.newestLogUpdateID = newestLogUpdateID
    }
}

extension SharedCache {
    /// Applies the log records after the local state's update id, in log
    /// order, through `target` (or through the newest record when nil), and
    /// returns what was done.
    ///
    /// Records are read in pages and applied many per state-file transaction
    /// (see ``Configuration/maximumOperationsPerTransaction``); every commit
    /// publishes a prefix of the log, so readers see the state advance record
    /// by record or faster, never backwards and never half a record.
    ///
    /// **Doing the work once.** Within a process, calls on one cache run one
    /// at a time; a call that finds its target already reached — or, for
    /// `target == nil`, that a call which started after it arrived has
    /// finished — returns without touching the datastore. Across processes,
    /// the applying call holds the state file's writer lock and applies only
    /// what lies beyond the state it found under that lock, so records read
    /// by two processes at once are applied by one of them.
    ///
    /// **Compacted logs.** A datastore may drop a single-key record once a
    /// later record of the same key exists (``Datastore``), which leaves a
    /// hole in the ids. Once an update meets a hole it commits nothing before
    /// the end of the available log, where every replacement is applied —
    /// ignoring `target` and the transaction size limit if need be — so that
    /// a committed position always equals a replay of the log through it.
    ///
    /// The first update of a new state file marks it initialized
    /// (``isValid()``), even when the log is empty. A state file that another
    /// process removed or replaced is reopened first.
    ///
    /// **Rewritten history.** When the log no longer holds the record after
    /// the local state (a history rewrite removed it), the state file is
    /// rebuilt from the datastore's latest checkpoint and installed in place
    /// of the old one atomically (readers of the old file keep a consistent
    /// view until they move over); then the records after the checkpoint are
    /// applied.
    ///
    /// - Throws: ``CacheError/datastore(_:)``, ``CacheError/corruptRecord(updateID:_:)``
    ///   or ``CacheError/historyRewritten(localUpdateID:firstRetainedUpdateID:)``
    ///   (when no checkpoint covers the removed records) after committing
    ///   every record before the failure; ``CacheError/stateAheadOfLog(localUpdateID:latestUpdateID:)``;
    ///   ``CacheError/stateFile(_:)``; ``CacheError/closed(path:)``. The local
    ///   state keeps serving reads after any failure.
    @discardableResult
    public func update(through target: UInt64? = nil) async throws(CacheError) -> UpdateSummary {
        try await update(reaching: target, applyingThrough: target)
    }

    /// Makes the local state reach at least `minimum`, applying everything
    /// the log holds when it has to apply anything: the read-your-writes step
    /// of a write. Concurrent writers of one process then mostly find their
    /// record already applied by the run before theirs, instead of each
    /// running an update of its own.
    @discardableResult
    func update(atLeastThrough minimum: UInt64) async throws(CacheError) -> UpdateSummary {
        try await update(reaching: minimum, applyingThrough: nil)
    }

    /// Runs an update inside the gate: returns at once when the state is at
    /// `target` or later, else applies the log through `limit` (nil: the end).
    private func update(reaching target: UInt64?, applyingThrough limit: UInt64?) async throws(CacheError) -> UpdateSummary {
        let ticket = await gate.enter()
        let started = CacheMetrics.now()
        do {
            let summary = try await applyLogRebuildingIfNeeded(reaching: target, through: limit, ticket: ticket)
            gate.leave(reached: summary.updateID)
            metrics.recordUpdate(
                updateID: summary.updateID, records: summary.recordsApplied, operations: summary.operationsApplied,
                nanoseconds: CacheMetrics.now() - started, readToEnd: target == nil && limit == nil)
            if summary.recordsApplied > 0 {
                changeDoorbell.ring()
                metrics.recordFileIfDue { try? self.statistics() }
            }
            return summary
        } catch {
            gate.leave(reached: nil)
            metrics.updateErrors.increment()
            configuration.logger.debug("update failed", metadata: ["state": "\(statePath)", "error": "\(error)"])
            throw error
        }
    }

    /// How many times one update moves to a file installed at the path
    /// while it waited for the writer lock before it applies to the file it
    /// has (``applyLog(reaching:through:ticket:replacedFiles:)``).
    static let maximumReopensPerUpdate = 8

    /// How many times one update rebuilds from a checkpoint before it gives
    /// up (see ``applyLogRebuildingIfNeeded(reaching:through:ticket:)``).
    static let maximumRebuildAttempts = 5

    /// Applies the log; when the log no longer holds the next record
    /// (history was rewritten past the local state), or no longer holds the
    /// record the state applied last as it was (``CacheError/logChanged(updateID:)``),
    /// rebuilds the state from the latest checkpoint (or the log's start)
    /// and applies what follows it.
    ///
    /// A rewrite that lands while the rebuild reads the checkpoint and the
    /// log after it (rewrites run back to back, or the rebuild is slow)
    /// removes what the rebuild still needed; the rebuild then starts again
    /// from the newer checkpoint, up to ``maximumRebuildAttempts`` times.
    private func applyLogRebuildingIfNeeded(
        reaching target: UInt64?, through limit: UInt64?, ticket: UpdateGate.Ticket
    ) async throws(CacheError) -> UpdateSummary {
        var attempts = 0
        while true {
            do {
                return try await applyLog(reaching: target, through: limit, ticket: ticket)
            } catch {
                // History rewritten past the state, or the record the state
                // applied last no longer in the log as it was: moving on from
                // there would diverge from every machine that reads the log.
                guard error.callsForRebuild else { throw error }
                attempts += 1
                guard attempts <= Self.maximumRebuildAttempts else { throw error }
                // A changed log is unexpected (a warning); a rewrite is routine.
                let level: Logger.Level = if case .logChanged = error { .warning } else { .notice }
                configuration.logger.log(level: level, "rebuilding the state from the log", metadata: [
                    "state": "\(statePath)", "reason": "\(error)", "attempt": "\(attempts)",
                ])
                metrics.rebuilds.increment()
                do throws(CacheError) {
                    switch error {
                    case .logChanged(let updateID): try await rebuildAfterLogChanged(updateID: updateID)
                    case .historyRewritten(let local, let first): try await rebuildFromCheckpoint(localUpdateID: local, firstRetained: first)
                    default: throw error
                    }
                } catch {
                    // A newer rewrite removed what this rebuild needed: the
                    // next apply fails again and rebuilds from its checkpoint.
                    guard attempts < Self.maximumRebuildAttempts, error.meansHistoryMovedOn else { throw error }
                }
            }
        }
    }

    /// The body of ``update(through:)``, run inside the gate: done at once
    /// when the state is at `minimum` or later; otherwise applies the log
    /// through `target` (nil: to its end).
    private func applyLog(
        reaching minimum: UInt64?, through target: UInt64?, ticket: UpdateGate.Ticket, replacedFiles: Int = 0
    ) async throws(CacheError) -> UpdateSummary {
        holder.releaseUnguardedFiles()
        let file = try currentFileReopeningIfRetired()
        let local = try position(of: file)
        if local.isInitialized, Self.isReached(local.updateID, minimum: minimum, ticket: ticket) {
            return UpdateSummary(updateID: local.updateID)
        }

        // Look at the log before taking the writer lock: when nothing is new,
        // an update costs one datastore read and no lock.
        var page = try await readPage(after: local.updateID, through: target)
        // The record at the local position must still be the one applied
        // (docs/FORMAT.md section 1.7): a log that changed under the state
        // is rebuilt from, not followed.
        if let applied = local.recordChecksum, let found = page.precedingRecordChecksum, applied != found {
            throw .logChanged(updateID: local.updateID)
        }
        if page.entries.isEmpty {
            try await checkNotAheadOfLog(file: file, localUpdateID: local.updateID, newest: page.newestUpdateID)
            if local.isInitialized { return UpdateSummary(updateID: local.updateID, newestLogUpdateID: page.newestUpdateID) }
        }

        let first = try await beginTransaction(on: file)
        // The wait for the lock may have ended because another process
        // installed a file at the path (a restore, a rebuild, a rewrite) and
        // let the old one go: then the records go to the new file, which is
        // the one this cache's reads move to, rather than to the old one.
        if file.isRetired && replacedFiles < Self.maximumReopensPerUpdate {
            first.abandon()
            return try await applyLog(reaching: minimum, through: target, ticket: ticket, replacedFiles: replacedFiles + 1)
        }
        var replay = LogReplay(
            transaction: first,
            summary: UpdateSummary(updateID: local.updateID, newestLogUpdateID: page.newestUpdateID),
            maximumOperationsPerTransaction: configuration.maximumOperationsPerTransaction,
            beginTransaction: { () throws(CacheError) in try await self.beginTransaction(on: file) })
        // The range the current page was read for (nil: to the log's end).
        var pageThrough = target
        do throws(CacheError) {
            while true {
                let pending = replay.unapplied(page.entries)
                // Read the next page while this one is applied: the two
                // overlap on separate threads. A run that is not exact reads
                // to the log's end.
                let limit = replay.isExact ? target : nil
                let nextRead = Self.nextRead(after: page, readThrough: pageThrough, position: replay.transaction.updateID, limit: limit)
                async let nextPage = pageResult(after: nextRead, through: limit)
                try await replay.apply(pending)
                if replay.hasReached(target) { break }
                page = try await nextPage.get()
                pageThrough = limit
                if let newest = page.newestUpdateID { replay.noteNewest(newest) }
                if page.entries.isEmpty { break }
            }
        } catch {
            replay.keepAppliedPrefix()
            throw error
        }
        return try replay.finish()
    }

    /// Whether a state at `updateID` needs no update: it is at `minimum` or
    /// later, or, when the caller wanted the log's end (no minimum), a run
    /// that started after the caller arrived reached it
    /// (``UpdateGate/Ticket/reachedByLaterRun``).
    private static func isReached(_ updateID: UInt64, minimum: UInt64?, ticket: UpdateGate.Ticket) -> Bool {
        if let minimum { return updateID >= minimum }
        guard let reached = ticket.reachedByLaterRun else { return false }
        return updateID >= reached
    }

    /// Where the page after `page` starts, or nil when there is none to
    /// read: `page` was empty (the log had nothing new; the update only has
    /// to mark the state initialized), or it reached the end of the range it
    /// was read for (`readThrough`) and that range is still the one wanted
    /// (`limit`: a hole widens it to the log's end), or the next page would
    /// start at or past `limit`.
    private static func nextRead(after page: LogPage, readThrough: UInt64?, position: UInt64, limit: UInt64?) -> UInt64? {
        guard !page.entries.isEmpty, !(page.reachesEnd && readThrough == limit) else { return nil }
        let start = max(page.entries.last?.updateID ?? 0, position)
        if let limit, start >= limit { return nil }
        return start
    }

    /// The current state file, reopened first when it was removed or
    /// replaced (see ``/WhyCacheState/SharedStateFile/isRetired``). Updates and the poller
    /// election (``holdsPollerLease()``) both go through it, so a process
    /// moves to the file at the path as soon as either looks.
    func currentFileReopeningIfRetired() throws(CacheError) -> SharedStateFile {
        guard var file = holder.currentFile else { throw .closed(path: statePath) }
        // The path holds a newer file, none (then a new one is created), or,
        // while a removal is in progress, the retired file itself: then the
        // removal is finished here (``/WhyCacheState/SharedStateFile/remove(at:)`` is idempotent).
        for _ in 0..<8 {
            guard file.isRetired else { return file }
            let fresh = try Self.openStateFile(at: statePath, configuration: configuration)
            if fresh.isRetired {
                do { try SharedStateFile.remove(at: statePath) } catch { throw CacheError(error) }
                continue
            }
            // Another task of this process may have reopened it meanwhile:
            // then its file is the one to use.
            guard let current = holder.replace(file, with: fresh) else { throw .closed(path: statePath) }
            file = current
        }
        guard file.isRetired else { return file }
        throw .stateFile(.corrupted(path: statePath, reason: "the file at this path keeps being replaced by retired files"))
    }

    /// Whether this process is the one that polls the datastore for every
    /// process of the state file: takes the file's poller lease
    /// (docs/FORMAT.md section 1.10) unless another process holds it, and
    /// keeps it while it does. Tries the lease on the current file —
    /// reopened first when it was removed or replaced — so that after a
    /// rebuild or a restore installed a new file at the path, the election
    /// moves to that file; the lease of the file left behind was given up
    /// when it stopped being current. No datastore call. ``BackgroundUpdater``
    /// calls it each round.
    ///
    /// - Throws: ``CacheError/closed(path:)``; ``CacheError/stateFile(_:)``
    ///   when the file cannot be reopened or the lease cannot be asked for.
    func holdsPollerLease() throws(CacheError) -> Bool {
        for _ in 0..<8 {
            let file = try currentFileReopeningIfRetired()
            let held: Bool
            do { held = try file.tryTakePollerLease() } catch { throw CacheError(error) }
            if holder.currentFile === file { return held }
            // The file stopped being current meanwhile (a close, or a reopen
            // by another task) and gave its lease up before this took it:
            // give it up again, or a file that nothing updates would keep it.
            file.releasePollerLease()
        }
        guard !holder.isClosed else { throw .closed(path: statePath) }
        return false
    }

    /// Gives up the poller lease of the current file if this cache holds it
    /// (its ``BackgroundUpdater`` stopped), so that another process takes it
    /// at its next round.
    func releasePollerLease() {
        holder.currentFile?.releasePollerLease()
    }

    /// One page of records after `after`, through `target`.
    private func readPage(after: UInt64, through target: UInt64?) async throws(CacheError) -> LogPage {
        do {
            return try await datastore.readPage(after: after, through: target, limits: configuration.readPageLimits)
        } catch {
            if case .historyRewritten(let first) = error {
                throw .historyRewritten(localUpdateID: after, firstRetainedUpdateID: first)
            }
            throw .datastore(error)
        }
    }

    /// ``readPage(after:through:)`` as a result, for a child task; an empty
    /// page without a read when `after` is nil.
    private func pageResult(after: UInt64?, through target: UInt64?) async -> Result<LogPage, CacheError> {
        guard let after else { return .success(LogPage(entries: [])) }
        do throws(CacheError) {
            return .success(try await readPage(after: after, through: target))
        } catch {
            return .failure(error)
        }
    }

    /// Throws ``CacheError/stateAheadOfLog(localUpdateID:latestUpdateID:)``
    /// when the log ends before the local state. Asks the datastore once
    /// per state file: after one successful check, the state only advances
    /// by applying records of this log. `newest` is the log's newest id that
    /// an empty page read after the local state reported, if it did (a
    /// datastore that reads from lagging copies reports it from a copy that
    /// holds the local state's position, or from the primary).
    private func checkNotAheadOfLog(file: SharedStateFile, localUpdateID: UInt64, newest: UInt64?) async throws(CacheError) {
        let identity = file.fileIdentity
        guard localUpdateID > 0, fileCheckedAgainstLog.withLock({ $0.map { $0 != identity } ?? true }) else { return }
        let latest: UInt64
        if let newest {
            latest = newest
        } else {
            do { latest = try await datastore.latestUpdateID() } catch { throw .datastore(error) }
        }
        if latest < localUpdateID {
            throw .stateAheadOfLog(localUpdateID: localUpdateID, latestUpdateID: latest)
        }
        fileCheckedAgainstLog.withLock { $0 = identity }
    }

    /// Starts a transaction on `file`. When another thread or process holds
    /// the writer lock, waits for it on `lockWaiter`'s thread, not on the
    /// cooperative pool.
    private func beginTransaction(on file: SharedStateFile) async throws(CacheError) -> WriteTransaction {
        do {
            if let transaction = try file.tryBeginWrite() { return transaction }
        } catch {
            throw CacheError(error)
        }
        let token: WriterLockToken
        do {
            token = try await lockWaiter.run { () throws(StateFileError) -> WriterLockToken in try file.waitForWriterLock() }
        } catch {
            throw CacheError(error)
        }
        do { return try file.beginWrite(holding: token) } catch { throw CacheError(error) }
    }
}
