/// Builds a state file that nobody else uses yet — a rebuild before it is
/// installed, or a history rewrite's scratch file — from a checkpoint and the
/// log after it.
///
/// Because nobody reads the file while it is built, the builder commits
/// whenever a transaction is large enough, with no regard for holes that a
/// compacting datastore left (``Datastore``): no intermediate state is ever
/// seen. The position it ends at is the last record it applied (or the
/// checkpoint's id).
struct PrivateStateBuilder {
    let datastore: any Datastore
    let configuration: SharedCache.Configuration

    /// Applies `checkpoint` (if any) and then the log after it through
    /// `limit` (to its end when `nil`) to `file`, and returns the position
    /// reached and how much of the log it read. Without a checkpoint, the log
    /// is applied after the file's current position, so a build can be
    /// continued. The file's state is marked initialized.
    ///
    /// - Precondition: `file` is private to the caller, and empty when
    ///   `checkpoint` is given.
    @discardableResult
    func build(
        into file: SharedStateFile, from checkpoint: CheckpointInfo?, through limit: UInt64?
    ) async throws(CacheError) -> (position: UInt64, logRecords: UInt64, logBytes: UInt64) {
        var transaction: WriteTransaction
        do { transaction = try file.beginWrite() } catch { throw CacheError(error) }
        var operations = 0
        func commitIfLarge() throws(CacheError) {
            guard operations >= configuration.maximumOperationsPerTransaction else { return }
            do {
                try transaction.commitInitialized()
                transaction = try file.beginWrite()
            } catch {
                throw CacheError(error)
            }
            operations = 0
        }
        do throws(CacheError) {
            var position = transaction.baseUpdateID
            var logRecords: UInt64 = 0
            var logBytes: UInt64 = 0
            if let checkpoint {
                position = checkpoint.updateID
                try await datastore.forEachCheckpointPayload(of: checkpoint, limits: configuration.readPageLimits) { (payload) throws(CacheError) in
                    let application = try transaction.apply(CollectionOfOne(LogEntry(updateID: checkpoint.updateID, payload: payload)))
                    if let failure = application.failure { throw failure }
                    // Applied under the checkpoint's id, the payload is not
                    // the log record with that id, whose checksum is unknown.
                    transaction.forgetAppliedRecord()
                    operations += application.operations
                    try commitIfLarge()
                }
                do { try transaction.setUpdateID(position) } catch { throw CacheError(error) }
            }
            position = try await datastore.forEachPage(after: position, through: limit, limits: configuration.readPageLimits) { (page) throws(CacheError) in
                let application = try transaction.apply(page)
                if let failure = application.failure { throw failure }
                operations += application.operations
                logRecords += UInt64(page.count)
                logBytes += page.reduce(0) { $0 + UInt64($1.payload.count) }
                try commitIfLarge()
            }
            do { try transaction.commitInitialized() } catch { throw CacheError(error) }
            return (position, logRecords, logBytes)
        } catch {
            transaction.abandon()
            throw error
        }
    }
}
