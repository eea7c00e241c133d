/// One change applied to the state: a key set to a value, or deleted, by
/// the log record `updateID`.
public struct CacheChange: Sendable, Hashable {
    /// The log record that made the change.
    public var updateID: UInt64
    /// The key.
    public var key: [UInt8]
    /// The new value, or nil when the key was deleted.
    public var value: [UInt8]?

    /// A change of `key` to `value` (nil: deleted) by record `updateID`.
    public init(updateID: UInt64, key: [UInt8], value: [UInt8]?) {
        self.updateID = updateID
        self.key = key
        self.value = value
    }

    /// The new value decoded as `type` with `codec` (use the cache's
    /// ``SharedCache/Configuration/codec``; default: JSON, as the cache's
    /// default), or nil when the key was deleted.
    ///
    /// - Throws: ``CacheError/codecFailed(key:reason:)`` when the value does
    ///   not decode as `type`.
    public func value<Value: Decodable>(
        decoding type: Value.Type, with codec: any CacheValueCodec = JSONValueCodec()
    ) throws(CacheError) -> Value? {
        guard let value else { return nil }
        do {
            return try value.withUnsafeBytes { try codec.decode(type, from: $0) }
        } catch {
            throw .codecFailed(key: CacheError.describe(key: key), reason: "\(error)")
        }
    }
}

/// What a change stream delivers.
public enum CacheChangeEvent: Sendable, Hashable {
    /// A change, in log order.
    case changed(CacheChange)
    /// The log no longer holds the changes after `missedAfter` (a history
    /// rewrite removed them before the stream read them). The stream goes on
    /// after `resumedAfter`, the local state's update id at that moment:
    /// rebuild whatever was derived from the changes by reading a snapshot
    /// of the state (``SharedCache/snapshot()``, which is at `resumedAfter`
    /// or later), then keep consuming.
    case historyRewritten(missedAfter: UInt64, resumedAfter: UInt64)
}

/// The changes applied to a cache's state on this machine, in log order, as
/// an `AsyncSequence` (``SharedCache/changes(after:matching:pollInterval:)``).
///
/// **Where the changes come from.** The stream follows the local state's
/// update id and reads the records it passed from the datastore, a page at
/// a time, when the consumer asks for more. It therefore sees every record
/// applied on this machine, whichever process applied it, and never a
/// change the local state has not applied yet: when an event for update id
/// `N` arrives, readers of the state see `N` or later. It wakes when an
/// update of this process applies records, and checks every `pollInterval`
/// for updates applied by other processes.
///
/// **Slow consumers.** Nothing is pushed: ``SharedCache/update(through:)``
/// only rings a doorbell, and a stream holds at most one page of records
/// (``SharedCache/Configuration/readPageLimits``), whatever its consumer's
/// pace. A consumer that falls so far behind that a history rewrite removes
/// the records it has not read gets ``CacheChangeEvent/historyRewritten(missedAfter:resumedAfter:)``
/// and continues from the current state.
///
/// **Compacting datastores.** A datastore that deletes older single-key
/// records of a key when a newer one arrives (the MySQL datastore) may
/// remove a record before a slow stream reads it; the stream then delivers
/// the key's newer change when the state reaches it, not the intermediate
/// value. Every key's last change is always delivered.
///
/// The sequence ends (returns nil) when the cache is closed or the
/// consuming task is cancelled. Iterate it from one task.
public struct CacheChanges: AsyncSequence, Sendable {
    public typealias Element = CacheChangeEvent
    public typealias Failure = CacheError

    let cache: SharedCache
    let start: UInt64
    let prefix: [UInt8]
    let pollInterval: Duration

    public func makeAsyncIterator() -> Iterator {
        Iterator(cache: cache, position: start, prefix: prefix, pollInterval: pollInterval)
    }

    /// Reads the changes; see ``CacheChanges``.
    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = CacheChangeEvent
        public typealias Failure = CacheError

        private let cache: SharedCache
        private let prefix: [UInt8]
        private let pollInterval: Duration
        /// The update id through which changes were read.
        private var position: UInt64
        /// Events read and not handed out yet, from `next` on.
        private var pending: [CacheChangeEvent] = []
        private var next = 0

        init(cache: SharedCache, position: UInt64, prefix: [UInt8], pollInterval: Duration) {
            self.cache = cache
            self.position = position
            self.prefix = prefix
            self.pollInterval = pollInterval
        }

        /// The next change, waiting for one; nil when the cache is closed or
        /// the task is cancelled.
        ///
        /// - Throws: ``CacheError/corruptRecord(updateID:_:)`` for a record
        ///   that cannot be decoded; ``CacheError/datastore(_:)`` when reading
        ///   the log fails (the stream can be iterated again: it retries
        ///   from where it stopped).
        public mutating func next() async throws(CacheError) -> CacheChangeEvent? {
            while true {
                if next < pending.count {
                    defer { next += 1 }
                    return pending[next]
                }
                pending.removeAll(keepingCapacity: true)
                next = 0
                if Task.isCancelled { return nil }
                let generation = cache.changeDoorbell.generation
                let local: UInt64
                do {
                    local = try cache.updateID()
                } catch .closed {
                    return nil
                }
                if local > position {
                    try await read(through: local)
                    continue
                }
                await cache.changeDoorbell.sleep(for: pollInterval, unlessRungSince: generation)
            }
        }

        /// Reads one page of records after `position` through `local` into `pending`.
        private mutating func read(through local: UInt64) async throws(CacheError) {
            let page: [LogEntry]
            do {
                page = try await cache.datastore.readRecords(after: position, through: local, limits: cache.configuration.readPageLimits)
            } catch {
                guard case .historyRewritten = error else { throw .datastore(error) }
                pending.append(.historyRewritten(missedAfter: position, resumedAfter: local))
                position = local
                return
            }
            for entry in page {
                let prefix = self.prefix
                let failure = entry.payload.withUnsafeBytes { bytes -> LogRecordError? in
                    do throws(LogRecordError) {
                        let record = try LogRecordView(validating: bytes)
                        record.forEachOperation { kind, key, value in
                            guard key.starts(with: prefix) else { return }
                            pending.append(.changed(CacheChange(
                                updateID: entry.updateID, key: Array(key), value: kind == .set ? Array(value) : nil)))
                        }
                        return nil
                    } catch {
                        return error
                    }
                }
                if let failure { throw .corruptRecord(updateID: entry.updateID, failure) }
                position = entry.updateID
            }
            // A compacting datastore may hold no record at all up to `local`.
            if page.isEmpty { position = local }
        }
    }
}

extension SharedCache {
    /// The changes this machine's state goes through after `updateID`
    /// (default: its current update id, so only changes from now on), for
    /// keys that start with `prefix` (default: all keys).
    ///
    /// ```swift
    /// for try await event in try cache.changes(matching: Array("user/".utf8)) {
    ///     switch event {
    ///     case .changed(let change): invalidate(change.key)
    ///     case .historyRewritten: invalidateEverything()
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - updateID: The update id after which changes are delivered
    ///     (default: the state's current one).
    ///   - prefix: Only keys that start with it (default: empty, every key).
    ///   - pollInterval: How often the stream checks for updates applied by
    ///     other processes (updates of this process wake it at once).
    /// - Throws: ``CacheError/closed(path:)``.
    public func changes(
        after updateID: UInt64? = nil, matching prefix: some Sequence<UInt8> = [UInt8](), pollInterval: Duration = .milliseconds(100)
    ) throws(CacheError) -> CacheChanges {
        var start: UInt64
        if let updateID {
            start = updateID
        } else {
            start = try self.updateID()
        }
        return CacheChanges(cache: self, start: start, prefix: Array(prefix), pollInterval: pollInterval)
    }
}
