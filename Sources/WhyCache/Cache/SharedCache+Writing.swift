extension SharedCache {
    /// Sets `value` for `key` and returns the update id of the log record
    /// that holds the change. When it returns, every process on this machine
    /// reads this value or a later one.
    ///
    /// - Throws: ``CacheError/invalidKey(length:)``, ``CacheError/valueTooLong(length:)``
    ///   or ``CacheError/recordTooLarge(size:maximum:)`` before anything is
    ///   written; see ``write(_:)`` for the rest.
    @discardableResult
    public func set(_ value: some Sequence<UInt8>, forKey key: some Sequence<UInt8>) async throws(CacheError) -> UInt64 {
        try await write([.set(key: Array(key), value: Array(value))])
    }

    /// Sets `value`, encoded with the configured codec, for `key`.
    ///
    /// - Throws: ``CacheError/codecFailed(key:reason:)`` when the value does
    ///   not encode; otherwise see ``set(_:forKey:)``.
    @discardableResult
    public func set(encoding value: some Encodable, forKey key: some Sequence<UInt8>) async throws(CacheError) -> UInt64 {
        let keyBytes = Array(key)
        let bytes: [UInt8]
        do {
            bytes = try configuration.codec.encode(value)
        } catch {
            throw .codecFailed(key: CacheError.describe(key: keyBytes), reason: "\(error)")
        }
        return try await write([.set(key: keyBytes, value: bytes)])
    }

    /// Sets every key of `items` to its value, in order (for a key that
    /// appears twice, the later value wins), and returns the update id of
    /// the last record written.
    ///
    /// - Throws: see ``write(_:)``.
    @discardableResult
    public func set(contentsOf items: some Sequence<(key: [UInt8], value: [UInt8])>) async throws(CacheError) -> UInt64 {
        try await write(items.map { LogOperation.set(key: $0.key, value: $0.value) })
    }

    /// Deletes `key` (deleting an absent key is not an error) and returns the
    /// update id of the log record that holds the deletion.
    ///
    /// - Throws: see ``write(_:)``.
    @discardableResult
    public func delete(_ key: some Sequence<UInt8>) async throws(CacheError) -> UInt64 {
        try await write([.delete(key: Array(key))])
    }

    /// Deletes every key of `keys` and returns the update id of the last
    /// record written.
    ///
    /// - Throws: see ``write(_:)``.
    @discardableResult
    public func delete(contentsOf keys: some Sequence<[UInt8]>) async throws(CacheError) -> UInt64 {
        try await write(keys.map { LogOperation.delete(key: $0) })
    }

    /// Appends `operations`, in order, to the log and returns the update id
    /// of the last record written; then applies the log through that id to
    /// the local state before returning.
    ///
    /// The operations are packed into as few records as
    /// ``Configuration/maximumRecordSize`` allows and appended in one call
    /// (all or none, for a datastore that writes batches atomically, as
    /// ``FileDatastore`` does). Other writers' records may be interleaved
    /// between the records of one large write. With no operations nothing is
    /// written and the local update id is returned.
    ///
    /// - Throws:
    ///   - before anything is written: ``CacheError/invalidKey(length:)``,
    ///     ``CacheError/valueTooLong(length:)``, ``CacheError/recordTooLarge(size:maximum:)``,
    ///     ``CacheError/closed(path:)``;
    ///   - ``CacheError/datastore(_:)`` when the append failed (whether a
    ///     failed append reached the log depends on the datastore's failure);
    ///   - ``CacheError/writtenButNotApplied(updateID:reason:)`` when the
    ///     records are in the log but the local state could not apply them.
    @discardableResult
    public func write(_ operations: some Sequence<LogOperation>) async throws(CacheError) -> UInt64 {
        guard !holder.isClosed else { throw .closed(path: statePath) }
        let records: [[UInt8]]
        do {
            records = try splitter.split(operations)
        } catch {
            throw CacheError(encoding: error)
        }
        guard !records.isEmpty else { return try updateID() }
        let ids: [UInt64]
        do {
            ids = try await datastore.append(contentsOf: records)
        } catch {
            throw .datastore(error)
        }
        guard ids.count == records.count, let last = ids.last else {
            throw .datastore(.invalidRequest(reason: "the datastore returned \(ids.count) ids for \(records.count) records"))
        }
        do {
            try await update(atLeastThrough: last)
        } catch {
            throw .writtenButNotApplied(updateID: last, reason: error.description)
        }
        return last
    }
}
