import CoreMetrics

/// A key-value cache whose whole dataset lives in one memory-mapped file
/// shared by every process on the machine, kept current from a change log.
///
/// ```swift
/// let store = try FileDatastore(directory: "/var/lib/myapp/log")
/// try await store.createIfMissing()
/// let cache = try SharedCache(statePath: "/dev/shm/myapp.whycache", datastore: store)
/// try await cache.update()                                  // catch up with the log
/// let id = try await cache.set(Array("blue".utf8), forKey: "color".utf8)
/// let color = try cache.value(forKey: "color".utf8)         // "blue", from shared memory
/// ```
///
/// ## Reads
/// Reads are synchronous and never touch the datastore: ``value(forKey:)``,
/// the zero-copy ``withValue(forKey:_:)-(_,(UnsafeRawBufferPointer?)->Result)``, ``contains(_:)``,
/// ``value(decoding:forKey:)``, and ``snapshot()`` for any number of reads and
/// ordered iterations (everything, a prefix, a key range) at one point in
/// time. A read never takes a lock, never waits for a writer and never blocks
/// one.
///
/// ## Writes
/// ``set(_:forKey:)``, ``set(contentsOf:)``, ``delete(_:)``,
/// ``delete(contentsOf:)`` and ``write(_:)`` append records to the log and
/// return the update id the log assigned (the last one, for a write split
/// into several records). Before they return, the local state has applied the
/// log through that id: **read-your-writes** for every process on the machine.
/// Writes that tasks of one process make at the same time are gathered into
/// shared records and appends (``Configuration/coalescesWrites``).
///
/// ## Prefix subscriptions
/// A cache whose ``Configuration/stateFileOptions`` name
/// ``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes`` keeps only the keys that
/// start with one of them: updates skip every other operation of the log
/// (their records still move the update id), and reads and iterations see
/// only the subscribed keys — any other key reads as absent. The prefixes
/// are stored in the state file when it is created, so every process that
/// opens it applies the same filter; a cache configured with other prefixes
/// than the file's refuses to open it
/// (``CacheError/subscriptionMismatch(path:stateFilePrefixes:configuredPrefixes:)``).
/// Writes of keys outside the prefixes are allowed — the log is shared by
/// every machine, and this one may write keys that others subscribe to —
/// but the local state ignores them, so read-your-writes holds for the
/// subscribed keys only.
///
/// ## Updates
/// ``update(through:)`` applies new log records, in log order, many records
/// per state-file transaction. The local state only ever moves forward along
/// the log, so no reader sees a value and then an older one. Any number of
/// processes and tasks may call it at once; the work is done once (see
/// ``update(through:)``).
///
/// ## Threads
/// A cache is `Sendable`: share one instance between all tasks and threads of
/// a process. Several instances (in one process or many) may use the same
/// state file and datastore.
public final class SharedCache: Sendable, KeyValueReading {
    /// The path of the shared-state file.
    public let statePath: String

    /// The change log this cache writes to and replays from.
    public let datastore: any Datastore

    /// The configuration the cache was opened with.
    public let configuration: Configuration

    let holder: StateFileHolder
    let gate = UpdateGate()
    /// Recorded by updates only, never by reads.
    let metrics: CacheMetrics
    /// Rung when an update of this process applied records (change streams wait on it).
    let changeDoorbell = Doorbell()
    let splitter: LogRecordSplitter

    /// Gathers concurrent writes into shared appends; nil when
    /// ``Configuration/coalescesWrites`` is off.
    let coalescer: WriteCoalescer?

    /// Runs the one blocking wait for the state file's writer lock (see
    /// ``UpdateGate``) on a thread of its own.
    let lockWaiter = BlockingIOQueue(label: "WhyCache.SharedCache.writerLock", concurrent: false)

    /// The identity (``MappedFile/fileIdentifier``) of the last state file
    /// found not to be ahead of the log, so that the check costs one
    /// datastore call per file, not one per idle update.
    let fileCheckedAgainstLog = Locked<(UInt64, UInt64)?>(nil)

    /// Opens the cache: opens the state file at `statePath`, creating an
    /// empty one if needed (see ``Configuration/stateFileOptions``). Does not
    /// contact the datastore; call ``update(through:)`` to catch up with the
    /// log (``isValid()`` tells whether that ever happened for this file).
    ///
    /// - Throws: ``CacheError/invalidConfiguration(reason:)``,
    ///   ``CacheError/subscriptionMismatch(path:stateFilePrefixes:configuredPrefixes:)``
    ///   when the file subscribes to other prefixes than the configuration
    ///   (``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes``), or
    ///   ``CacheError/stateFile(_:)`` when the file cannot be opened or is
    ///   damaged (see ``Configuration/replacesUnusableStateFile``).
    public init(statePath: String, datastore: any Datastore, configuration: Configuration = Configuration()) throws(CacheError) {
        try configuration.validate()
        self.statePath = statePath
        self.datastore = datastore
        self.configuration = configuration
        do {
            self.splitter = try LogRecordSplitter(maximumRecordSize: configuration.maximumRecordSize)
        } catch {
            throw CacheError(encoding: error)
        }
        self.coalescer = configuration.coalescesWrites ? WriteCoalescer(
                maximumAppendBytes: configuration.maximumCoalescedAppendBytes, gatherWait: configuration.coalescingGatherWait) : nil
        self.holder = StateFileHolder(try Self.openStateFile(at: statePath, configuration: configuration))
        self.metrics = CacheMetrics(
            name: configuration.metricsName ?? String(statePath.split(separator: "/").last ?? Substring(statePath)),
            factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    /// Opens (or creates) the state file, replacing an unusable one when the
    /// configuration allows it, and checks that it subscribes to the
    /// configured prefixes.
    static func openStateFile(at path: String, configuration: Configuration) throws(CacheError) -> SharedStateFile {
        let file = try openOrReplaceStateFile(at: path, configuration: configuration)
        // Every process applies the file's own filter; a cache configured
        // for other keys would otherwise read a state that is not the one
        // it asked for.
        let configured = KeyPrefixes.canonical(configuration.stateFileOptions.subscribedPrefixes)
        guard file.subscribedPrefixes == configured else {
            throw .subscriptionMismatch(path: path, stateFilePrefixes: file.subscribedPrefixes, configuredPrefixes: configured)
        }
        return file
    }

    /// Opens (or creates) the state file, replacing an unusable one when the
    /// configuration allows it.
    private static func openOrReplaceStateFile(at path: String, configuration: Configuration) throws(CacheError) -> SharedStateFile {
        do {
            return try SharedStateFile.open(at: path, options: configuration.stateFileOptions)
        } catch {
            guard error.marksUnusableStateFile, configuration.replacesUnusableStateFile else { throw CacheError(error) }
        }
        do {
            try SharedStateFile.remove(at: path)
            return try SharedStateFile.open(at: path, options: configuration.stateFileOptions)
        } catch {
            throw CacheError(error)
        }
    }

    // MARK: Reading

    /// Calls `body` with the current state file; throws ``CacheError/closed(path:)`` once closed.
    @inline(__always)
    func withStateFile<Result>(_ body: (SharedStateFile) throws(CacheError) -> Result) throws(CacheError) -> Result {
        guard let result = try holder.withCurrent(body) else { throw .closed(path: statePath) }
        return result
    }

    /// Calls `body` with the value under the borrowed `key` as a buffer in
    /// shared memory (no copy), or with nil when the key is absent: the read
    /// every other form goes through (``/WhyCacheState/KeyValueReading``). The buffer is
    /// valid only during the call.
    ///
    /// - Parameters:
    ///   - key: the key's bytes, 1 to ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    ///   - body: what to do with the value; it may throw a ``CacheError`` of its own.
    /// - Throws: ``CacheError/invalidKey(length:)`` for an empty or too long
    ///   key, ``CacheError/closed(path:)``, ``CacheError/stateFile(_:)`` when
    ///   the file is damaged, or the error `body` throws.
    public func withValue<Result>(
        forKeyBytes key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws(CacheError) -> Result
    ) throws(CacheError) -> Result {
        try withStateFile { (file) throws(CacheError) in
            let outcome: Swift.Result<Result, CacheError>
            do throws(StateFileError) {
                outcome = try file.withValue(forKeyBytes: key) { (value) throws(StateFileError) in
                    Swift.Result { () throws(CacheError) in try body(value) }
                }
            } catch {
                throw CacheError(error)
            }
            return try outcome.get()
        }
    }

    /// The value under `key` decoded as `type` with the configured codec, or
    /// nil when the key is absent.
    ///
    /// - Throws: ``CacheError/codecFailed(key:reason:)`` when the stored bytes
    ///   do not decode, or see ``value(forKey:)``.
    public func value<Value: Decodable>(decoding type: Value.Type, forKey key: some Sequence<UInt8>) throws(CacheError) -> Value? {
        let codec = configuration.codec
        let keyBytes = Array(key)
        let decoded = try keyBytes.withUnsafeBytes { keyBuffer in
            Result { () throws(CacheError) in
                try self.withValue(forKeyBytes: keyBuffer) { (value) throws(CacheError) -> Result<Value, any Error>? in
                    value.map { bytes in Result { try codec.decode(type, from: bytes) } }
                }
            }
        }.get()
        switch decoded {
        case nil: return nil
        case .success(let value): return value
        case .failure(let error): throw .codecFailed(key: CacheError.describe(key: keyBytes), reason: "\(error)")
        }
    }

    /// Pins the current state for any number of consistent reads: lookups
    /// and ordered iterations over everything, a prefix
    /// (``/WhyCacheState/KeyRange/prefix(_:)``) or a key range, all at one update id
    /// (``/WhyCacheState/StateSnapshot/updateID``) however many updates apply meanwhile.
    /// Close it (or release it) when done: it keeps the space it sees from
    /// being reused.
    public func snapshot() throws(CacheError) -> StateSnapshot {
        try withStateFile { (file) throws(CacheError) in
            do throws(StateFileError) { return try file.snapshot() } catch { throw CacheError(error) }
        }
    }

    /// Pins a snapshot (``snapshot()``) for the duration of `body` and
    /// closes it when `body` returns or throws, so that its space is never
    /// kept by a forgotten snapshot. Do not let the snapshot escape `body`:
    /// after it, every read through it fails with
    /// ``/WhyCacheState/StateFileError/closed(path:)``.
    ///
    /// ```swift
    /// let flags = try cache.withSnapshot { snapshot in
    ///     try snapshot.entries(in: .prefix(Array("flag/".utf8)))
    /// }
    /// ```
    ///
    /// Its reads throw ``/WhyCacheState/StateFileError``, and Swift infers a throwing
    /// closure's error as `any Error`, so this call throws `any Error`: a
    /// ``CacheError`` when the snapshot cannot be pinned, or what `body`
    /// throws, unchanged.
    ///
    /// - Throws: a ``CacheError`` when the snapshot cannot be pinned, or what
    ///   `body` throws.
    public func withSnapshot<Result, Failure: Error>(_ body: (StateSnapshot) throws(Failure) -> Result) throws -> Result {
        let snapshot = try snapshot()
        defer { snapshot.close() }
        return try body(snapshot)
    }

    /// The keys in `range`, in ascending order, at one point in time.
    public func keys(in range: KeyRange = .all) throws(CacheError) -> [[UInt8]] {
        let snapshot = try snapshot()
        defer { snapshot.close() }
        do { return try snapshot.keys(in: range) } catch { throw CacheError(error) }
    }

    /// The values in `range`, in ascending order of their keys, at one point in time.
    public func values(in range: KeyRange = .all) throws(CacheError) -> [[UInt8]] {
        let snapshot = try snapshot()
        defer { snapshot.close() }
        do { return try snapshot.values(in: range) } catch { throw CacheError(error) }
    }

    /// The keys and values in `range`, in ascending key order, at one point in time.
    public func entries(in range: KeyRange = .all) throws(CacheError) -> [(key: [UInt8], value: [UInt8])] {
        let snapshot = try snapshot()
        defer { snapshot.close() }
        do { return try snapshot.entries(in: range) } catch { throw CacheError(error) }
    }

    /// The update id the local state has reached: every log record up to it
    /// is applied, none after it.
    public func updateID() throws(CacheError) -> UInt64 {
        try withStateFile { (file) throws(CacheError) in
            do throws(StateFileError) { return try file.updateID() } catch { throw CacheError(error) }
        }
    }

    /// Whether the local state is usable: the state file is open and intact
    /// and was initialized from the log by an update. A new (or removed)
    /// state file is not valid until the first ``update(through:)``.
    public func isValid() -> Bool {
        (try? withStateFile { (file) throws(CacheError) in try position(of: file).isInitialized }) ?? false
    }

    /// The update id of `file`, whether it was initialized from the log, and
    /// the payload checksum of the record at that id when the file knows it,
    /// read together.
    func position(of file: SharedStateFile) throws(CacheError) -> (updateID: UInt64, isInitialized: Bool, recordChecksum: UInt32?) {
        do throws(StateFileError) {
            let snapshot = try file.snapshot()
            defer { snapshot.close() }
            return (snapshot.updateID, snapshot.isInitialized, snapshot.appliedRecordChecksum)
        } catch {
            throw CacheError(error)
        }
    }

    /// Counters describing the state file (key count, sizes, readers).
    public func statistics() throws(CacheError) -> StateFileStatistics {
        try withStateFile { (file) throws(CacheError) in
            do throws(StateFileError) { return try file.statistics() } catch { throw CacheError(error) }
        }
    }

    // MARK: The state file

    /// Closes the cache in this process: every later call throws
    /// ``CacheError/closed(path:)``. The state file stays on disk for the
    /// other processes; its mapping is released once no read of this
    /// process uses it. When this process's ``BackgroundUpdater`` was the
    /// one polling the datastore for the processes of the file, it gives
    /// that role up at once, and another process takes it over at its next
    /// round.
    public func close() {
        holder.close()
    }

    /// Deletes the shared-state file and starts over with an empty one, to
    /// be rebuilt from the log by the next ``update(through:)``.
    ///
    /// Processes that have the old file open keep reading its contents and
    /// move to the new file at their next update.
    public func removeStateFile() throws(CacheError) {
        guard !holder.isClosed else { throw .closed(path: statePath) }
        do {
            try SharedStateFile.remove(at: statePath)
        } catch {
            throw CacheError(error)
        }
        holder.replace(with: try Self.openStateFile(at: statePath, configuration: configuration))
    }
}
