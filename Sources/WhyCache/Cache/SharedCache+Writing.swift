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

    /// Sets every key of `items` to its value encoded with the configured
    /// codec, in order (for a key that appears twice, the later value wins),
    /// and returns the update id of the last record written. Every value is
    /// encoded before anything is written: one that does not encode fails
    /// the whole call and writes nothing.
    ///
    /// - Throws: ``CacheError/codecFailed(key:reason:)`` naming the first key
    ///   whose value does not encode; otherwise see ``write(_:)``.
    @discardableResult
    public func set<Value: Encodable>(
        encodingContentsOf items: some Sequence<(key: [UInt8], value: Value)>
    ) async throws(CacheError) -> UInt64 {
        let codec = configuration.codec
        var operations: [LogOperation] = []
        for item in items {
            do {
                operations.append(.set(key: item.key, value: try codec.encode(item.value)))
            } catch {
                throw .codecFailed(key: CacheError.describe(key: item.key), reason: "\(error)")
            }
        }
        return try await write(operations)
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
    /// of the record that holds the last of them; then applies the log
    /// through that id to the local state before returning.
    ///
    /// The operations are packed into as few records as
    /// ``Configuration/maximumRecordSize`` allows and appended in one call
    /// (all or none, for a datastore that writes batches atomically, as
    /// ``FileDatastore`` does). Other writers' records may be interleaved
    /// between the records of one large write. With no operations nothing is
    /// written and the local update id is returned.
    ///
    /// **Atomicity.** Operations that fit in one record are written as one
    /// record: every reader sees all of them or none. A larger write is spread
    /// over consecutive records of one append, which readers may see applied
    /// in part.
    ///
    /// **Coalescing** (``Configuration/coalescesWrites``). Writes that other
    /// tasks of this process make on this cache at the same time may share the
    /// append and the records: the returned id is then that of the shared
    /// record holding this write's last operation, so writes that share a
    /// record return the same id. A write that fits in one record is still never split
    /// across records, so the atomicity above is unchanged; a large write may
    /// share its first and last record with other writes. A caller's next
    /// write, made after this one returned, lands in a later record.
    ///
    /// - Throws:
    ///   - before anything is written: ``CacheError/invalidKey(length:)``,
    ///     ``CacheError/valueTooLong(length:)``, ``CacheError/recordTooLarge(size:maximum:)``,
    ///     ``CacheError/closed(path:)``;
    ///   - ``CacheError/datastore(_:)`` when the append failed (whether a
    ///     failed append reached the log depends on the datastore's failure);
    ///     with coalescing, every write of that append gets the same error;
    ///   - ``CacheError/writtenButNotApplied(updateID:reason:)`` when the
    ///     records are in the log but the local state could not apply them.
    @discardableResult
    public func write(_ operations: some Sequence<LogOperation>) async throws(CacheError) -> UInt64 {
        guard !holder.isClosed else { throw .closed(path: statePath) }
        let validated: LogRecordSplitter.ValidatedWrite?
        do {
            validated = try splitter.validate(operations)
        } catch {
            throw CacheError(encoding: error)
        }
        guard let validated else { return try updateID() }
        if let coalescer {
            return try await coalescer.write(validated) { writes, appended in
                await self.appendAndApply(writes, whenAppended: appended)
            }
        }
        guard let outcome = await appendAndApply([validated]).first else {
            throw .internalInconsistency(reason: "a write reported no outcome")
        }
        return try outcome.get()
    }

    /// Packs `writes` into records (`LogRecordSplitter/pack(_:)`: a write
    /// that fits in one record stays in one), appends them with one call,
    /// calls `appended` as soon as the append is over, then applies the log
    /// through the highest id, and returns each write's outcome, in order:
    /// the id of the record holding its last operation.
    ///
    /// Exactly one outcome per write, and nothing half-reported: a failed
    /// append fails every write with the same error; a failed apply fails
    /// every write as ``CacheError/writtenButNotApplied(updateID:reason:)``,
    /// each with its own id.
    func appendAndApply(
        _ writes: [LogRecordSplitter.ValidatedWrite], whenAppended appended: () -> Void = {}
    ) async -> [Result<UInt64, CacheError>] {
        let packing = splitter.pack(writes)
        let ids: [UInt64]
        do {
            ids = try await datastore.append(contentsOf: packing.records)
            appended()
        } catch {
            appended()
            return Array(repeating: .failure(.datastore(error)), count: writes.count)
        }
        guard ids.count == packing.records.count, let highest = ids.last else {
            let error = CacheError.datastore(
                .contractViolated(reason: "the datastore returned \(ids.count) ids for \(packing.records.count) records"))
            return Array(repeating: .failure(error), count: writes.count)
        }
        // Ids increase in append order, so the last record's id is the highest.
        let writeIDs = packing.lastRecordIndices.map { ids[$0] }
        do {
            try await update(atLeastThrough: highest)
        } catch {
            return writeIDs.map { .failure(.writtenButNotApplied(updateID: $0, reason: error.description)) }
        }
        return writeIDs.map { .success($0) }
    }
}
