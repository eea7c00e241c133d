/// Reading a datastore front to back for a replay into a private state file
/// (``PrivateStateBuilder``, ``SortedStateBuilder``), with every error as a
/// ``CacheError``: the one place that pages through a checkpoint and the log
/// for them.
extension Datastore {
    /// Hands every payload of `checkpoint` to `body`, in order.
    ///
    /// - Throws: what `body` throws; ``CacheError/datastore(_:)``.
    func forEachCheckpointPayload(
        of checkpoint: CheckpointInfo, limits: DatastorePageLimits, _ body: ([UInt8]) throws(CacheError) -> Void
    ) async throws(CacheError) {
        do {
            for try await payload in checkpointRecords(checkpoint, limits: limits) {
                try body(payload)
            }
        } catch let error as CacheError {
            throw error
        } catch let error as DatastoreError {
            throw .datastore(error)
        } catch {
            throw .datastore(.invalidRequest(reason: "\(error)"))
        }
    }

    /// Reads the records after `position` through `limit` (to the end of the
    /// log when nil) a page at a time and hands each non-empty page to
    /// `body`; returns the id of the last record read, or `position`.
    ///
    /// - Throws: what `body` throws;
    ///   ``CacheError/historyRewritten(localUpdateID:firstRetainedUpdateID:)``
    ///   when the log no longer holds the next record; ``CacheError/datastore(_:)``.
    func forEachPage(
        after position: UInt64, through limit: UInt64?, limits: DatastorePageLimits,
        _ body: ([LogEntry]) throws(CacheError) -> Void
    ) async throws(CacheError) -> UInt64 {
        var position = position
        while limit.map({ position < $0 }) ?? true {
            let page: [LogEntry]
            do {
                page = try await readRecords(after: position, through: limit, limits: limits)
            } catch {
                if case .historyRewritten(let first) = error {
                    throw .historyRewritten(localUpdateID: position, firstRetainedUpdateID: first)
                }
                throw .datastore(error)
            }
            guard let last = page.last else { break }
            try body(page)
            position = last.updateID
        }
        return position
    }
}
