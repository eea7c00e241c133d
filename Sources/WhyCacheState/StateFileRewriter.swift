import WhyCacheSupport

/// Rewrites a live state file into a new one whose blocks lie in key order,
/// and puts the new file in its place, while other processes keep reading
/// and writing.
///
/// **Why.** A file filled in log order (random order, for most workloads)
/// has its leaves in that order, so a walk in key order — a range scan, a
/// snapshot, a checkpoint — jumps across the whole file; and a file that
/// grew and shrank keeps the slack of its free lists. A file filled in key
/// order has its leaves one after the other, and siblings' inner nodes
/// near each other. docs/PERFORMANCE.md measures both.
///
/// **How.** Four steps, only the last of which holds the file's writer
/// lock:
/// 1. Pin a snapshot of the file and copy its entries, in key order, into a
///    new file next to it (`<path>.rewriting.<pid>.<random>`), created with
///    the same options (`SharedStateFile.creationOptions()`), in bounded
///    transactions (`BatchedWriter`).
/// 2. Catch up without the lock: pin the file's current state and apply to
///    the copy the keys that changed since the previous one
///    (`StateSnapshot.forEachChange(since:_:)`, which reads only what
///    differs); again, until a round changes at most
///    ``maximumChangesBeforeLocking`` keys. When ``maximumCatchUpRounds``
///    rounds pass without that, writes are too busy for the rewrite to
///    catch them up: it gives up (``StateFileRewriteSummary/Outcome/writesDidNotSettle``)
///    rather than make writers wait for a long last round.
/// 3. Take the writer lock of the file, so that nobody commits to it, and
///    apply the last changes the same way; the copy's last commit carries
///    the file's update id, initialized mark and applied record checksum.
///    When more than ``maximumChangesUnderLock`` keys changed while the lock
///    was awaited (a busy writer may take it again and again before a
///    waiter gets it), the lock is let go at once and step 2 goes on.
/// 4. Still holding the lock, install the copy at the path
///    (``SharedStateFile/install(_:at:)``: the old file is marked retired,
///    the two are exchanged atomically, the old one is unlinked).
///
/// Readers are never blocked; writers wait only for step 3 and 4, whose
/// length follows the changes committed during the last catch-up round,
/// itself short (it changed few keys).
/// The states the rewrite pins keep their blocks from reuse while it runs,
/// as any open snapshot does, so a file under heavy writes grows by what
/// those writes replace meanwhile.
///
/// **After the install.** Processes that have the old file open keep reading
/// it, consistently, until they notice it is retired and reopen the path
/// (``SharedStateFile/isRetired``; `SharedCache` checks at every update). A
/// writer of another process that was waiting for the old file's lock gets
/// it after the install and commits to the retired file: that commit is not
/// in the new file. For a cache this is what happens after any install (a
/// restore, a rebuild): its state is a copy of the log, and its next update
/// applies the records the new file lacks.
///
/// **Crashes.** A rewriter killed before step 4 leaves its copy, which the
/// next rewrite of the path deletes, and the file untouched. Killed inside
/// step 4, after marking the old file retired and before the exchange, it
/// leaves a retired file at the path, which the next opener removes (see
/// ``SharedStateFile/remove(at:)``); a cache then rebuilds its state from
/// the log, as after a restore killed at the same instant.
public struct StateFileRewriter: Sendable {
    /// The most catch-up rounds without the writer lock (step 2). Default: 16.
    public var maximumCatchUpRounds = 16

    /// The most keys the last round without the lock may have changed for
    /// the rewrite to take the writer lock (step 3): the round under the
    /// lock then applies what was committed while that short round ran.
    /// Default: 4,096 (a few milliseconds of work).
    public var maximumChangesBeforeLocking = 4096

    /// The most keys the round under the writer lock may change. When the
    /// lock was slow to come (a busy writer) and more changed meanwhile, the
    /// rewrite lets the lock go without applying them and catches up
    /// without it again (each such attempt counts as a round). Default:
    /// 32,768.
    public var maximumChangesUnderLock = 32_768

    /// Called after the copy (with 0), after each catch-up round (with its
    /// number, from 1) and before the writer lock is taken (with -1), for
    /// tests that commit to the file at those moments.
    package var betweenSteps: (@Sendable (_ step: Int) throws -> Void)?

    /// What a rewrite's temporary file name adds to the state path, before
    /// the process id and a random number.
    package static let temporaryMarker = ".rewriting."

    /// A rewriter with the default settings.
    public init() {}

    /// Rewrites the state file at `path` in key order and installs the
    /// result in its place (see ``StateFileRewriter``).
    ///
    /// Blocks while another process holds the file's writer lock (step 3):
    /// call it off the cooperative thread pool, and not while this thread
    /// holds a write transaction on the file.
    ///
    /// - Returns: what the rewrite did: ``StateFileRewriteSummary/outcome``
    ///   tells whether the new file was installed, or the file at the path
    ///   was left as it was because another process replaced it meanwhile
    ///   or writes did not settle (the copy is deleted then).
    /// - Throws: a ``StateFileError`` when the path holds no usable state
    ///   file, the copy cannot be built (a full disk:
    ///   ``StateFileError/fileFull(path:limit:)`` or
    ///   ``StateFileError/systemCallFailed(call:path:errno:)``), or the
    ///   file is damaged. The file at the path is untouched on failure.
    public func rewrite(at path: String) throws(StateFileError) -> StateFileRewriteSummary {
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        let live = try SharedStateFile.open(at: path, options: options)
        let (directory, name) = AbandonedFiles.split(path)
        AbandonedFiles.remove(in: directory, prefix: name + Self.temporaryMarker)
        let temporary = AbandonedFiles.temporaryPath(prefix: path + Self.temporaryMarker)
        do throws(StateFileError) {
            let summary = try rewrite(live, into: temporary)
            // A copy that was not installed is nobody's.
            if !summary.isInstalled { FileSystem<SystemCallError>.removeLeftover(temporary) }
            return summary
        } catch {
            FileSystem<SystemCallError>.removeLeftover(temporary)
            throw error
        }
    }

    /// Steps 1 to 4 of the type's description, building the copy at
    /// `temporary` (which the caller deletes unless it was installed).
    private func rewrite(_ live: SharedStateFile, into temporary: String) throws(StateFileError) -> StateFileRewriteSummary {
        let start = Clocks.monotonicNanoseconds()
        var summary = StateFileRewriteSummary()
        /// The summary of a rewrite that stops without installing.
        func ended(_ outcome: StateFileRewriteSummary.Outcome) -> StateFileRewriteSummary {
            summary.outcome = outcome
            summary.totalNanoseconds = Clocks.monotonicNanoseconds() - start
            return summary
        }
        summary.bytesBefore = try live.statistics().heapBytes
        var createOptions = try live.creationOptions()
        createOptions.createIfMissing = true
        let copy = try SharedStateFile.open(at: temporary, options: createOptions)

        var base = try live.snapshot()
        defer { base.close() }
        let writer = try BatchedWriter(file: copy)
        do throws(StateFileError) {
            var cursor = try base.trieCursor(in: .all)
            while try cursor.next() {
                try writer.setValue(bytes: cursor.currentValue, forKeyBytes: cursor.currentKey)
            }
        } catch {
            writer.abandon()
            throw error
        }
        summary.keysCopied = base.count
        try writer.finish(updateID: base.updateID, isInitialized: base.isInitialized, appliedRecordChecksum: base.appliedRecordChecksum)
        copy.releaseResidentPages()
        try step(0)

        // The keys the last round changed: the size of the next round
        // (with no rounds allowed, everything is caught up under the lock).
        var lastRound = maximumCatchUpRounds > 0 ? Int.max : 0
        while true {
            while lastRound > maximumChangesBeforeLocking && summary.catchUpRounds < maximumCatchUpRounds {
                let head = try live.snapshot()
                guard head.pin.transaction != base.pin.transaction else {
                    head.close()
                    lastRound = 0
                    break
                }
                lastRound = try Self.apply(head, since: base, to: copy)
                summary.changesCaughtUp += lastRound
                summary.catchUpRounds += 1
                base.close()
                base = head
                try step(summary.catchUpRounds)
            }
            guard lastRound <= maximumChangesBeforeLocking else { return ended(.writesDidNotSettle) }

            try step(-1)
            let lock = try live.beginWrite()
            let locked = Clocks.monotonicNanoseconds()
            defer { lock.abandon() }
            guard !live.isRetired else { return ended(.fileReplaced) }
            let head = try live.snapshot()
            if head.pin.transaction != base.pin.transaction {
                // The wait for the lock may have been long (a busy writer
                // takes it again and again): count before applying, and go
                // back to the rounds without the lock when there is much.
                var pending = 0
                try head.forEachChange(since: base) { _, _ in
                    pending += 1
                    return pending <= maximumChangesUnderLock
                }
                if pending > maximumChangesUnderLock {
                    lock.abandon()
                    head.close()
                    summary.lockAttempts += 1
                    // At least one more round (or the end of them) before the next attempt.
                    lastRound = .max
                    continue
                }
                summary.changesUnderLock = try Self.apply(head, since: base, to: copy)
            }
            base.close()
            base = head
            summary.bytesAfter = try copy.statistics().heapBytes
            try SharedStateFile.install(temporary, at: live.path)
            summary.keyCount = head.count
            summary.updateID = head.updateID
            let end = Clocks.monotonicNanoseconds()
            summary.writerLockNanoseconds = end - locked
            summary.totalNanoseconds = end - start
            return summary
        }
    }

    /// Calls ``betweenSteps`` with `number`, if set; what it throws other
    /// than a ``StateFileError`` becomes ``StateFileError/invalidOptions(reason:)``.
    private func step(_ number: Int) throws(StateFileError) {
        guard let betweenSteps else { return }
        do {
            try betweenSteps(number)
        } catch let error as StateFileError {
            throw error
        } catch {
            throw .invalidOptions(reason: "\(error)")
        }
    }

    /// Applies to `copy` (which holds the state of `older`) the keys that
    /// changed between `older` and `newer`, and `newer`'s identity; returns
    /// how many keys changed.
    private static func apply(_ newer: StateSnapshot, since older: StateSnapshot, to copy: SharedStateFile) throws(StateFileError) -> Int {
        let writer = try BatchedWriter(file: copy)
        var changes = 0
        do throws(StateFileError) {
            try newer.forEachChange(since: older) { (key, value) throws(StateFileError) in
                if let value {
                    try writer.setValue(bytes: value, forKeyBytes: key)
                } else {
                    try writer.removeValue(forKeyBytes: key)
                }
                changes += 1
                return true
            }
        } catch {
            writer.abandon()
            throw error
        }
        try writer.finish(updateID: newer.updateID, isInitialized: newer.isInitialized, appliedRecordChecksum: newer.appliedRecordChecksum)
        return changes
    }
}
