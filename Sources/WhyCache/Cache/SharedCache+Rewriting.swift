import WhyCacheState

extension SharedCache {
    /// Rewrites the state file in key order and installs the result in its
    /// place while every process keeps using it (``/WhyCacheState/StateFileRewriter``).
    ///
    /// A file filled by replaying the log holds its leaves in log order; the
    /// rewritten one holds them in key order, so range reads, snapshots and
    /// checkpoints walk it sequentially, and it sheds the slack of its free
    /// lists (docs/PERFORMANCE.md measures both). Run it after a large
    /// initial replay, or now and then from a maintenance task; it needs free
    /// space for a second copy of the state next to the file.
    ///
    /// Reads are never blocked. Writes of every process wait only for the
    /// changes committed during the rewrite's last round, which is short
    /// (``/WhyCacheState/StateFileRewriter/maximumChangesBeforeLocking``), and the install.
    /// This cache moves to the new file before returning; other caches on the
    /// file move at their next update, which applies any record that reached
    /// the old file after the install.
    ///
    /// - Returns: what the rewrite did; its ``/WhyCacheState/StateFileRewriteSummary/outcome``
    ///   says when the file was left as it was: another process replaced it
    ///   meanwhile (a restore, a rebuild, another rewrite), or writes kept
    ///   changing too many keys for the rewrite to catch up (try later).
    /// - Throws: ``CacheError/closed(path:)`` after ``close()``;
    ///   ``CacheError/stateFile(_:)`` when the copy cannot be built (a full
    ///   disk) or the file is damaged. The file is untouched on failure.
    @discardableResult
    public func rewriteStateFile() async throws(CacheError) -> StateFileRewriteSummary {
        guard !holder.isClosed else { throw .closed(path: statePath) }
        let path = statePath
        let summary: StateFileRewriteSummary
        do {
            // A queue of its own: the rewrite may take seconds, and the
            // cache's lock waiter must stay free for this process's writes.
            summary = try await BlockingIOQueue(label: "WhyCache.SharedCache.rewrite", concurrent: false).run {
                () throws(StateFileError) -> StateFileRewriteSummary in
                try StateFileRewriter().rewrite(at: path)
            }
        } catch {
            throw CacheError(error)
        }
        _ = try currentFileReopeningIfRetired()
        return summary
    }
}
