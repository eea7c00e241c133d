import Glibc
import CoreMetrics
import Synchronization

/// The metrics of one ``SharedCache`` (swift-metrics), recorded by
/// ``SharedCache/update(through:)`` and ``BackgroundUpdater`` — never by a
/// read: the `get` path records nothing.
///
/// Every metric carries the dimension `("cache", name)` (see
/// ``SharedCache/Configuration/metricsName``). With no metrics backend
/// bootstrapped (`MetricsSystem.bootstrap`) they cost a call into swift-metrics'
/// no-op handlers per update.
///
/// **Lag in a follower.** Only the process that polls the datastore (the
/// holder of the poller lease, see ``BackgroundUpdater/Configuration/pollsOncePerMachine``)
/// asks the log for its latest id, so only it records the lag gauges; a
/// process that follows another's poller leaves them as they were (unset,
/// or their value from when it last polled) and records its local update id
/// each round. The state file is shared, so the poller's lag is every
/// process's lag: read it where `whycache_poller` is 1.
///
/// | Label | Kind | Meaning |
/// |---|---|---|
/// | `whycache_local_update_id` | gauge | the update id of the local state |
/// | `whycache_lag_update_ids` | gauge | records in the log not applied yet (``BackgroundUpdater``, when it polls) |
/// | `whycache_lag_seconds` | gauge | time since the local state was last known to be current (``BackgroundUpdater``, when it polls) |
/// | `whycache_poller` | gauge | 1 while this process's ``BackgroundUpdater`` polls the datastore for the processes of the state file, 0 while it follows another process's poller |
/// | `whycache_records_applied_total` | counter | log records applied |
/// | `whycache_keys_applied_total` | counter | sets and deletes applied |
/// | `whycache_update_duration` | timer | the duration of each update that applied something |
/// | `whycache_update_errors_total` | counter | updates that failed |
/// | `whycache_rebuilds_total` | counter | rebuilds from a checkpoint (history rewritten past the local state) |
/// | `whycache_state_file_bytes` | gauge | the state file's size on disk (`StateFileStatistics.fileSize`) |
/// | `whycache_state_free_bytes` | gauge | bytes of blocks on the file's free lists, reusable by the next write (`StateFileStatistics.freeBytes`; blocks still visible to a reader are not counted) |
/// | `whycache_live_readers` | gauge | live processes holding reader slots of the file (`StateFileStatistics.liveReaderProcesses`) |
///
/// The three file gauges describe the shared file, whichever process
/// changed it: every ``BackgroundUpdater`` round records them (poller and
/// followers alike), and so does an update that applied records — at most
/// once a second per cache.
final class CacheMetrics: Sendable {
    let localUpdateID: Gauge
    let lagUpdateIDs: Gauge
    let lagSeconds: Gauge
    let recordsApplied: Counter
    let keysApplied: Counter
    let updateDuration: Timer
    let updateErrors: Counter
    let rebuilds: Counter
    let fileBytes: Gauge
    let freeBytes: Gauge
    let liveReaders: Gauge
    let poller: Gauge

    /// When the local state was last found current (it had applied the whole
    /// log it read), in nanoseconds of the continuous clock; 0 = never.
    private let lastCurrent = Atomic<UInt64>(0)
    /// When the file's statistics were last recorded (same clock).
    private let lastFileRecord = Atomic<UInt64>(0)

    /// The metrics of the cache `name`, made by `factory`.
    init(name: String, factory: any MetricsFactory) {
        let dimensions = [("cache", name)]
        localUpdateID = Gauge(label: "whycache_local_update_id", dimensions: dimensions, factory: factory)
        lagUpdateIDs = Gauge(label: "whycache_lag_update_ids", dimensions: dimensions, factory: factory)
        lagSeconds = Gauge(label: "whycache_lag_seconds", dimensions: dimensions, factory: factory)
        recordsApplied = Counter(label: "whycache_records_applied_total", dimensions: dimensions, factory: factory)
        keysApplied = Counter(label: "whycache_keys_applied_total", dimensions: dimensions, factory: factory)
        updateDuration = Timer(label: "whycache_update_duration", dimensions: dimensions, factory: factory)
        updateErrors = Counter(label: "whycache_update_errors_total", dimensions: dimensions, factory: factory)
        rebuilds = Counter(label: "whycache_rebuilds_total", dimensions: dimensions, factory: factory)
        fileBytes = Gauge(label: "whycache_state_file_bytes", dimensions: dimensions, factory: factory)
        freeBytes = Gauge(label: "whycache_state_free_bytes", dimensions: dimensions, factory: factory)
        liveReaders = Gauge(label: "whycache_live_readers", dimensions: dimensions, factory: factory)
        poller = Gauge(label: "whycache_poller", dimensions: dimensions, factory: factory)
    }

    /// Records a finished update that reached `updateID`, applying
    /// `records` records of `operations` operations in `nanoseconds`;
    /// `readToEnd` says whether it applied everything the log held when it
    /// read it. (Plain numbers: this layer knows nothing of the cache's
    /// types, so that the cache depends on it and not the reverse.)
    func recordUpdate(updateID: UInt64, records: Int, operations: Int, nanoseconds: UInt64, readToEnd: Bool) {
        localUpdateID.record(updateID)
        if readToEnd { lastCurrent.store(Self.now(), ordering: .relaxed) }
        guard records > 0 else { return }
        recordsApplied.increment(by: records)
        keysApplied.increment(by: operations)
        updateDuration.recordNanoseconds(nanoseconds)
    }

    /// Records the state file's sizes and readers.
    func recordFile(_ statistics: StateFileStatistics) {
        fileBytes.record(statistics.fileSize)
        freeBytes.record(statistics.freeBytes)
        liveReaders.record(statistics.liveReaderProcesses)
    }

    /// Records the lag: `updateIDs` records behind the log (nil when it is
    /// unknown, after a failed round), and the seconds since the state was
    /// last found current (0 when it is current now, or was never found so).
    func recordLag(updateIDs: UInt64?) {
        if let updateIDs { lagUpdateIDs.record(updateIDs) }
        let last = lastCurrent.load(ordering: .relaxed)
        let now = Self.now()
        lagSeconds.record(updateIDs == 0 || last == 0 ? 0 : Double(now - min(last, now)) / 1e9)
    }

    /// Records the state file's sizes and readers from `statistics`, at
    /// most once a second (`statistics` is only called when due).
    func recordFileIfDue(_ statistics: () -> StateFileStatistics?) {
        let now = Self.now()
        let last = lastFileRecord.load(ordering: .relaxed)
        guard now - min(last, now) >= 1_000_000_000 || last == 0,
              lastFileRecord.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged,
              let statistics = statistics()
        else { return }
        recordFile(statistics)
    }

    /// Monotonic nanoseconds (never 0).
    static func now() -> UInt64 {
        Clocks.monotonicNanoseconds() + 1
    }
}
