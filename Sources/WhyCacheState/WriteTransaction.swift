import WhyCacheSupport

/// A batch of changes to a shared-state file, published atomically.
///
/// At most one write transaction exists per file at a time, across all
/// processes: ``SharedStateFile/beginWrite()`` takes a cross-process lock that
/// the kernel releases if the process dies. Changes are invisible to readers
/// (including snapshots taken before and during the transaction) until
/// ``commit()``, which publishes all of them, with the new update id, by one
/// atomic store. ``abandon()`` — or releasing the transaction without
/// committing — discards them. A transaction belongs to one thread at a time.
///
/// If an operation fails midway (for example the file is full), the
/// transaction is invalidated: ``commit()`` then abandons it and throws
/// ``StateFileError/transactionInvalidated``. Invalid arguments (key or value
/// length, a key outside the file's subscribed prefixes) are rejected before
/// anything changes and do not invalidate it.
package final class WriteTransaction {
    /// The file being written.
    package let file: SharedStateFile
    private let lockDescriptor: StateFileDescriptor
    private let base: CommitRecord
    private let baseOffset: Int
    private var trie: TrieWriter
    /// Walks toward the keys announced by `prefetchPath(forKeyBytes:)`.
    private var prefetcher = PathPrefetcher()
    private var changed = false
    private var invalidated = false
    private var finished = false

    /// The update id the state will carry once committed. Starts at the
    /// update id of the state the transaction began from.
    package private(set) var updateID: UInt64

    /// Whether the state will be marked as built from a change log once
    /// committed (see ``markInitialized()``). Starts as the base state's mark.
    package private(set) var isInitialized: Bool

    /// The payload checksum of the log record ``updateID``, published with
    /// the state so that a later update can tell whether the log still holds
    /// that record (``noteAppliedRecord(checksum:)``). Starts as the base
    /// state's; cleared whenever the update id moves without one.
    private(set) var appliedRecordChecksum: UInt32?

    init(file: SharedStateFile, lock: StateFileDescriptor, base: CommitRecord, baseOffset: Int, allocator: SpaceAllocator) {
        self.file = file
        self.lockDescriptor = lock
        self.base = base
        self.baseOffset = baseOffset
        self.trie = TrieWriter(allocator: allocator, root: base.root, keyCount: base.keyCount)
        self.updateID = base.updateID
        self.isInitialized = base.flags & FileLayout.commitFlagInitialized != 0
        self.appliedRecordChecksum = base.appliedRecordChecksum
    }

    deinit { abandon() }

    /// The number of keys, including this transaction's changes.
    package var count: Int { Int(trie.keyCount) }

    /// The update id of the state this transaction started from.
    package var baseUpdateID: UInt64 { base.updateID }

    /// Sets the update id to publish with the changes. It may not be lower
    /// than the base state's: the state never moves backwards.
    package func setUpdateID(_ updateID: UInt64) throws(StateFileError) {
        try checkActive()
        guard updateID >= base.updateID else {
            throw .updateIDMovedBackwards(current: base.updateID, proposed: updateID)
        }
        if updateID != self.updateID { appliedRecordChecksum = nil }
        self.updateID = updateID
    }

    /// Records `checksum` as the payload checksum (CRC-32C) of the log
    /// record ``updateID``, which the caller has just applied.
    package func noteAppliedRecord(checksum: UInt32) {
        appliedRecordChecksum = checksum
    }

    /// Forgets the applied record's checksum: the state at ``updateID`` was
    /// not reached by applying the log record with that id (a checkpoint's
    /// contents were applied under the checkpoint's id).
    package func forgetAppliedRecord() {
        appliedRecordChecksum = nil
    }

    /// Marks the state as built from a change log: the mark a cache sets on
    /// its first update and that ``StateSnapshot/isInitialized`` reports. It
    /// is never cleared; a state to rebuild is a new file.
    package func markInitialized() throws(StateFileError) {
        try checkActive()
        isInitialized = true
    }

    /// Stores `value` under `key`, replacing any previous value.
    @inlinable
    package func setValue(_ value: some Sequence<UInt8>, forKey key: some Sequence<UInt8>) throws(StateFileError) {
        try withBorrowedBytes(key) { keyBytes in
            withBorrowedBytes(value) { valueBytes in
                Result { () throws(StateFileError) in try self.setValue(bytes: valueBytes, forKeyBytes: keyBytes) }
            }
        }.get()
    }

    /// Removes `key`; returns whether it was present.
    @inlinable
    @discardableResult
    package func removeValue(forKey key: some Sequence<UInt8>) throws(StateFileError) -> Bool {
        try withBorrowedBytes(key) { keyBytes in
            Result { () throws(StateFileError) in try self.removeValue(forKeyBytes: keyBytes) }
        }.get()
    }

    /// The value under `key` as this transaction sees it (its own changes included).
    @inlinable
    package func value(forKey key: some Sequence<UInt8>) throws(StateFileError) -> [UInt8]? {
        try withBorrowedBytes(key) { keyBytes in
            Result { () throws(StateFileError) in try self.value(forKeyBytes: keyBytes) }
        }.get()
    }

    /// Stores `value` under `key` (both borrowed buffers).
    ///
    /// - Throws: ``StateFileError/keyOutsideSubscription(path:)`` when the
    ///   file subscribes to prefixes and `key` starts with none of them.
    package func setValue(bytes value: UnsafeRawBufferPointer, forKeyBytes key: UnsafeRawBufferPointer) throws(StateFileError) {
        try checkActive()
        try SharedStateFile.validate(key: key)
        guard value.count <= WhyCacheLimits.maximumValueLength else { throw .valueTooLong(value.count) }
        // Invariant (docs/FORMAT.md section 1.2): a subscribed file holds only
        // keys under its prefixes. Every insert comes through here.
        guard file.mapped.subscription.contains(key) else { throw .keyOutsideSubscription(path: file.path) }
        if prefetcher.isActive { prefetcher.advance(in: trie.reader) }
        do {
            try trie.set(key, value)
            changed = true
        } catch {
            invalidated = true
            throw error
        }
    }

    /// How many operations ahead to announce keys with
    /// ``prefetchPath(forKeyBytes:)``: as many as there are walks in flight.
    package static let pathPrefetchDistance = PathPrefetcher.capacity

    /// Announces that `key` will be set or removed a few operations from
    /// now, so that its path through the tree is fetched into the cache
    /// meanwhile: every later `setValue` and `removeValue` of this
    /// transaction moves each announced walk one level down
    /// (``PathPrefetcher``). Announcing each key about eight operations
    /// ahead overlaps the cache misses of a large tree's random inserts.
    /// Only a hint: it changes no result, and a key that is never changed,
    /// or that is malformed, costs a few prefetches at most.
    package func prefetchPath(forKeyBytes key: UnsafeRawBufferPointer) {
        guard !finished else { return }
        prefetcher.start(toward: key, from: trie.root)
    }

    /// Removes `key` (a borrowed buffer); returns whether it was present. A
    /// key outside the file's subscribed prefixes is never present.
    @discardableResult
    package func removeValue(forKeyBytes key: UnsafeRawBufferPointer) throws(StateFileError) -> Bool {
        try checkActive()
        try SharedStateFile.validate(key: key)
        if prefetcher.isActive { prefetcher.advance(in: trie.reader) }
        do {
            let removed = try trie.remove(key)
            changed = changed || removed
            return removed
        } catch {
            invalidated = true
            throw error
        }
    }

    @usableFromInline
    func value(forKeyBytes key: UnsafeRawBufferPointer) throws(StateFileError) -> [UInt8]? {
        try checkActive()
        try SharedStateFile.validate(key: key)
        return try trie.reader.lookup(key, root: trie.root).map { Array($0) }
    }

    /// Marks the state initialized (``markInitialized()``) and commits; a
    /// transaction that fails to commit is abandoned.
    package func commitInitialized() throws(StateFileError) {
        do {
            try markInitialized()
            try commit()
        } catch {
            abandon()
            throw error
        }
    }

    /// Publishes every change and the update id atomically, then releases the
    /// writer lock. A transaction that changed nothing publishes nothing.
    package func commit() throws(StateFileError) {
        guard !finished else { throw .transactionFinished }
        if invalidated {
            abandon()
            throw .transactionInvalidated
        }
        let mapped = file.mapped
        let flags = isInitialized ? base.flags | FileLayout.commitFlagInitialized : base.flags
        if !changed && updateID == base.updateID && flags == base.flags && appliedRecordChecksum == base.appliedRecordChecksum {
            finish(clean: !trie.allocator.hasAllocated)
            return
        }
        do {
            trie.allocator.retire(baseOffset, size: FileLayout.commitRecordSize)
            try trie.allocator.writeRetireLists()
            let recordOffset = try trie.allocator.allocate(FileLayout.commitRecordSize)
            let record = CommitRecord(
                transaction: trie.allocator.transaction, updateID: updateID, root: trie.root, keyCount: trie.keyCount,
                heapEnd: UInt64(trie.allocator.bump), bootID: mapped.durable ? .zero : BootID.current,
                time: Clocks.wallClockNanoseconds(), flags: flags, appliedRecordChecksum: appliedRecordChecksum)
            record.write(to: UnsafeMutableRawBufferPointer(start: mapped.base + recordOffset, count: FileLayout.commitRecordSize))
            if mapped.durable { try mapped.synchronize() }
            // The publication: after this store, new readers see the new state.
            mapped.atomicWord(at: FileLayout.currentCommitOffset).store(UInt64(recordOffset), ordering: .sequentiallyConsistent)
            if mapped.durable { try? mapped.synchronize() }
        } catch {
            finish(clean: false)
            throw error
        }
        mapped.setWord(0, at: FileLayout.writerDirtyOffset)
        finished = true
        mapped.unlockWriter(lockDescriptor)
    }

    /// Discards every change and releases the writer lock. Does nothing if the
    /// transaction already finished.
    package func abandon() {
        guard !finished else { return }
        finish(clean: !trie.allocator.hasAllocated)
    }

    /// Ends the transaction. When blocks were taken, the free lists are
    /// rebuilt from the last commit; if even that fails, the dirty word stays
    /// set and the next writer retries the recovery.
    private func finish(clean: Bool) {
        finished = true
        let mapped = file.mapped
        if clean {
            mapped.setWord(0, at: FileLayout.writerDirtyOffset)
        } else {
            do {
                try SpaceAllocator.recover(file: mapped, commit: base, commitOffset: baseOffset)
                mapped.setWord(0, at: FileLayout.writerDirtyOffset)
            } catch {
                // Left dirty on purpose: see above.
            }
        }
        mapped.unlockWriter(lockDescriptor)
    }

    private func checkActive() throws(StateFileError) {
        if finished { throw .transactionFinished }
        if invalidated { throw .transactionInvalidated }
    }
}
