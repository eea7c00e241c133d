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
/// 2. Catch up without the lock, up to ``catchUpRounds`` times: pin the
///    file's current state and apply to the copy the keys that changed
///    since the previous one (`StateSnapshot.forEachChange(since:_:)`,
///    which reads only what differs).
/// 3. Take the writer lock of the file, so that nobody commits to it, and
///    apply the last changes the same way; the copy's last commit carries
///    the file's update id, initialized mark and applied record checksum.
/// 4. Still holding the lock, install the copy at the path
///    (``SharedStateFile/install(_:at:)``: the old file is marked retired,
///    the two are exchanged atomically, the old one is unlinked).
///
/// Readers are never blocked; writers wait only for step 3 and 4, whose
/// length follows the changes committed during the last catch-up round.
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
    /// How many times the copy catches up without the writer lock before the
    /// last round, which holds it. Default: 4.
    public var catchUpRounds = 4

    /// Called after step 1 (with 1) and after step 2 (with 2), for tests
    /// that commit to the file at those moments.
    package var betweenSteps: (@Sendable (_ step: Int) throws(StateFileError) -> Void)?

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
    /// - Returns: what the rewrite did; ``StateFileRewriteSummary/isInstalled``
    ///   is false when another process replaced or removed the file at the
    ///   path meanwhile (its file is left in place, and the copy deleted).
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
            return try rewrite(live, into: temporary)
        } catch {
            FileSystem<SystemCallError>.removeLeftover(temporary)
            throw error
        }
    }

    /// Steps 1 to 4 of the type's description, building the copy at `temporary`.
    private func rewrite(_ live: SharedStateFile, into temporary: String) throws(StateFileError) -> StateFileRewriteSummary {
        var summary = StateFileRewriteSummary()
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
        try betweenSteps?(1)

        for _ in 0..<catchUpRounds {
            let head = try live.snapshot()
            guard head.pin.transaction != base.pin.transaction else {
                head.close()
                break
            }
            summary.changesCaughtUp += try Self.apply(head, since: base, to: copy)
            summary.catchUpRounds += 1
            base.close()
            base = head
        }

        try betweenSteps?(2)
        let lock = try live.beginWrite()
        defer { lock.abandon() }
        guard !live.isRetired else {
            FileSystem<SystemCallError>.removeLeftover(temporary)
            return summary
        }
        let head = try live.snapshot()
        if head.pin.transaction != base.pin.transaction {
            summary.changesUnderLock = try Self.apply(head, since: base, to: copy)
        }
        base.close()
        base = head
        summary.bytesAfter = try copy.statistics().heapBytes
        try SharedStateFile.install(temporary, at: live.path)
        summary.isInstalled = true
        summary.keyCount = head.count
        summary.updateID = head.updateID
        return summary
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
            }
        } catch {
            writer.abandon()
            throw error
        }
        try writer.finish(updateID: newer.updateID, isInitialized: newer.isInitialized, appliedRecordChecksum: newer.appliedRecordChecksum)
        return changes
    }
}
