import CoreMetrics
import Logging

extension SharedCache {
    /// How a ``SharedCache`` opens its state file, writes records and applies them.
    public struct Configuration: Sendable {
        /// How the state file is opened or created (size limit, reader
        /// slots, durability, subscribed prefixes). Default:
        /// ``/WhyCacheState/SharedStateFile/Options/init()``.
        ///
        /// With ``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes``, the cache
        /// keeps only the keys under those prefixes (see "Prefix
        /// subscriptions" in ``SharedCache``): the state file is created with
        /// them, and an existing file must hold the same prefixes (in
        /// canonical form), else opening the cache fails with
        /// ``CacheError/subscriptionMismatch(path:stateFilePrefixes:configuredPrefixes:)``.
        public var stateFileOptions = SharedStateFile.Options()

        /// The largest log record a multi-key write produces, in bytes
        /// (default 1 MiB). Writes larger than this are split into several
        /// records; one key and value that cannot fit in a record of this
        /// size is ``CacheError/recordTooLarge(size:maximum:)``.
        /// Must lie in `LogRecordSplitter/allowedMaximumRecordSizes`.
        public var maximumRecordSize = WhyCacheLimits.defaultMaximumRecordSize

        /// How much ``SharedCache/update(through:)`` reads from the datastore
        /// per request. Default: ``DatastorePageLimits/default``.
        public var readPageLimits = DatastorePageLimits.default

        /// How many operations one state-file transaction of an update applies
        /// before it is committed and the next one starts (default 1,048,576).
        /// Larger transactions apply faster; smaller ones show progress to
        /// readers sooner while a long backlog is replayed. Each commit is a
        /// prefix of the log, so readers never see a record half applied.
        public var maximumOperationsPerTransaction = 1 << 20

        /// The codec of the `Codable` conveniences. Default: ``JSONValueCodec``.
        public var codec: any CacheValueCodec = JSONValueCodec()

        /// Whether opening the cache replaces a state file that cannot be used
        /// (damaged, truncated, of another format version, or not durable
        /// across the restart of the machine) with an empty one, to be rebuilt
        /// from the log by the next update. Default: false, so that such a
        /// file is reported as ``CacheError/stateFile(_:)`` and left intact.
        /// A file that is not a WhyCache state file is never replaced.
        public var replacesUnusableStateFile = false

        /// Where the cache logs what its updates do: rebuilds from a
        /// checkpoint (notice), failed updates (debug; the caller gets the
        /// error). Default: a logger that discards everything.
        public var logger = Logger(label: "whycache", factory: { _ in SwiftLogNoOpLogHandler() })

        /// The swift-metrics backend of the cache's metrics (see
        /// ``BackgroundUpdater`` and the list in `docs/ARCHITECTURE.md`).
        /// Default nil: `MetricsSystem.factory`, which records nothing unless
        /// the application bootstrapped a backend.
        public var metricsFactory: (any MetricsFactory)?

        /// The value of the `cache` dimension of every metric. Default nil:
        /// the state file's name (the last component of its path).
        public var metricsName: String?

        /// Whether writes that tasks of this process make on the cache at the
        /// same time are gathered into shared log records and one append
        /// (default: true).
        ///
        /// One append is in flight at a time; the writes that arrive meanwhile
        /// wait and go together in the next one, packed into as few records as
        /// ``maximumRecordSize`` allows, and the local state applies them once.
        /// A lone writer waits for nobody: its write is appended at once, as
        /// without coalescing. Each caller still gets back the id of the record
        /// that holds its (last) operation and reads its write when the call
        /// returns, and a caller's writes stay in the log in the order it made
        /// them.
        ///
        /// What a caller keeps and what it shares:
        /// - **Atomicity is unchanged.** A write whose operations fit in one
        ///   record is never split across records, so readers see all of it or
        ///   none; a larger write is spread over consecutive records, as
        ///   without coalescing.
        /// - **Records and failures are shared.** The record holding a write
        ///   may hold other callers' writes, after or before it, so several
        ///   calls may return the same id. An append that fails, fails every
        ///   write gathered in it with the same ``CacheError/datastore(_:)``.
        /// - **Shared records are not compacted.** A datastore that drops a
        ///   single-key record once a later one of the same key exists (the
        ///   MySQL datastore, FORMAT.md §4.5) never drops a record of several
        ///   operations, so repeated concurrent writes of the same keys grow
        ///   the log until the next history rewrite.
        ///
        /// It is on by default: with 64 concurrent tasks it raised the rate of
        /// single-key sets through MySQL 2.1–2.8 times on a quiet machine (to
        /// 31,000–37,000 sets/s) and halved the CPU per set, left the file
        /// datastore's rate without a consistent difference (its own group
        /// commit already shares one `fdatasync` between concurrent appends)
        /// with 32 times fewer records, and a lone writer's latency unchanged
        /// (docs/PERFORMANCE.md, "Write coalescing"). Turn it off where
        /// concurrent writes of the same few keys should stay compactable on
        /// MySQL.
        public var coalescesWrites = true

        /// With ``coalescesWrites``, the most bytes of encoded operations one
        /// append gathers (default 8 MiB): the first waiting write always goes,
        /// the next ones while they fit, and the rest wait for the following
        /// append. It bounds the memory and latency of one append, not the
        /// size of a single write. Must be at least 1.
        public var maximumCoalescedAppendBytes = 8 << 20

        /// With ``coalescesWrites``, how long the next append may wait for
        /// the callers of the append before it to hand in their next writes
        /// (default 200 µs; zero turns the wait off).
        ///
        /// The callers of one append still apply their records when the next
        /// append gathers, so without the wait concurrent writers settle into
        /// two cohorts taking turns, each append carrying half of them. The
        /// wait ends as soon as all of them are back; it counts from the end
        /// of the previous append, never lasts longer than that append took,
        /// and is skipped after an append of one caller: a lone writer never
        /// waits (docs/PERFORMANCE.md, "Gathering the next transaction"). At
        /// most 1 s.
        public var coalescingGatherWait: Duration = .microseconds(200)

        /// The default configuration.
        public init() {}

        /// Throws unless every value is usable.
        func validate() throws(CacheError) {
            guard LogRecordSplitter.allowedMaximumRecordSizes.contains(maximumRecordSize) else {
                throw .invalidConfiguration(
                    reason: "maximumRecordSize \(maximumRecordSize) is outside \(LogRecordSplitter.allowedMaximumRecordSizes)")
            }
            guard readPageLimits.maximumCount >= 1, readPageLimits.maximumBytes >= 1 else {
                throw .invalidConfiguration(reason: "readPageLimits must allow at least one record")
            }
            guard maximumOperationsPerTransaction >= 1 else {
                throw .invalidConfiguration(reason: "maximumOperationsPerTransaction must be at least 1")
            }
            guard coalescingGatherWait >= .zero, coalescingGatherWait <= .seconds(1) else {
                throw .invalidConfiguration(reason: "coalescingGatherWait must be between 0 and 1 s, not \(coalescingGatherWait)")
            }
            guard maximumCoalescedAppendBytes >= 1 else {
                throw .invalidConfiguration(reason: "maximumCoalescedAppendBytes must be at least 1")
            }
        }
    }
}
