/// What `WriteTransaction/apply(_:operationBudget:)` did with a run of log records.
struct LogPageApplication {
    /// The records applied: a prefix of the run.
    var records = 0
    /// The operations in those records that were applied: those of keys
    /// under the file's subscribed prefixes (all of them, for a file without).
    var operations = 0
    /// Why the record after them was not applied (it is corrupt), if it was not.
    var failure: CacheError?
}

extension WriteTransaction {
    /// Applies the log records `entries`, in order, to this transaction and
    /// moves its update id to the last one applied. Stops after the record
    /// that brings the operations applied to `operationBudget` or more, so
    /// that the caller can commit there.
    ///
    /// Each record is validated whole (checksum, format, key and value
    /// limits) before its first operation is applied. At an invalid record
    /// the application stops and reports it in ``LogPageApplication/failure``:
    /// a corrupt record is never skipped and never half applied, and the
    /// records before it stay applied.
    ///
    /// In a file with subscribed prefixes (``/WhyCacheState/SharedStateFile/subscribedPrefixes``),
    /// an operation on any other key is skipped before any tree work, on the
    /// record's borrowed key bytes, without allocating; the update id still
    /// moves over its record. So the file holds exactly the keys under its
    /// prefixes that a replay of the log holds.
    ///
    /// The operations of a record of several are applied with their keys
    /// announced ``WriteTransaction/pathPrefetchDistance`` operations ahead
    /// (``WriteTransaction/prefetchPath(forKeyBytes:)``), so that the tree
    /// walks of a large state overlap their cache misses. (Sorting a page's
    /// operations by key before applying them was measured and made replay
    /// slower: the cost of building a small tree is first-touch page faults,
    /// not cache misses on the path.)
    ///
    /// - Throws: ``CacheError/stateFile(_:)`` when the file fails midway; the
    ///   transaction is then invalidated and commits nothing.
    func apply(_ entries: some Collection<LogEntry>, operationBudget: Int = .max) throws(CacheError) -> LogPageApplication {
        var result = LogPageApplication()
        let subscription = file.subscription
        for entry in entries {
            let outcome = entry.payload.withUnsafeBytes { bytes -> Result<Int, CacheError> in
                let record: LogRecordView
                do throws(LogRecordError) {
                    record = try LogRecordView(validating: bytes)
                } catch {
                    return .failure(.corruptRecord(updateID: entry.updateID, error))
                }
                var applied = 0
                do throws(StateFileError) {
                    let ahead = record.operationCount > 1 ? WriteTransaction.pathPrefetchDistance : 0
                    try record.forEachOperation(announcingKeysAhead: ahead, { self.prefetchPath(forKeyBytes: $0) }) {
                        (kind, key, value) throws(StateFileError) in
                        guard subscription.contains(key) else { return }
                        applied += 1
                        switch kind {
                        case .set: try self.setValue(bytes: value, forKeyBytes: key)
                        case .delete: try self.removeValue(forKeyBytes: key)
                        }
                    }
                    try setUpdateID(entry.updateID)
                } catch {
                    return .failure(CacheError(error))
                }
                return .success(applied)
            }
            switch outcome {
            case .success(let operations):
                result.records += 1
                result.operations += operations
            case .failure(let error):
                guard case .corruptRecord = error else { throw error }
                result.failure = error
                noteLastApplied(of: entries, count: result.records)
                return result
            }
            if result.operations >= operationBudget { break }
        }
        noteLastApplied(of: entries, count: result.records)
        return result
    }

    /// Notes the checksum of the last of the first `count` records of
    /// `entries` (the ones applied, each validated whole), which the
    /// transaction's update id now names (``noteAppliedRecord(checksum:)``):
    /// the record's own CRC-32C, its last four bytes (docs/FORMAT.md
    /// section 3.1).
    private func noteLastApplied(of entries: some Collection<LogEntry>, count: Int) {
        guard count > 0 else { return }
        let payload = entries[entries.index(entries.startIndex, offsetBy: count - 1)].payload
        if let checksum = LogRecordFormat.trailingChecksum(of: payload) { noteAppliedRecord(checksum: checksum) }
    }
}
