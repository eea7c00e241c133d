import Glibc
import Logging
import ServiceLifecycle

/// Keeps a ``SharedCache`` current in the background: a swift-service-lifecycle
/// `Service` that calls ``SharedCache/update(through:)`` at an interval and
/// on demand, backs off exponentially while the datastore fails, and stops
/// on graceful shutdown.
///
/// ```swift
/// let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .seconds(1)))
/// let group = ServiceGroup(services: [updater, httpServer], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
///
/// // Elsewhere: read-your-writes across processes. Process A wrote update
/// // `id` and told this process about it; this waits until it is applied here.
/// try await updater.waitUntilApplied(through: id)
/// ```
///
/// **Rounds.** Each round applies everything new (one datastore read when
/// nothing is, which also tells the log's newest id for the lag metrics), and wakes the callers of
/// ``waitUntilApplied(through:)`` whose id has been reached. A round starts
/// after ``Configuration/interval``, or at once when ``requestUpdate()`` or a
/// new waiter asks for one. A failed round is logged and counted
/// (`whycache_update_errors_total`) and the next waits twice as long as the
/// one before, from ``Configuration/interval`` up to
/// ``Configuration/maximumBackoff``; the first success resets it. The local
/// state keeps serving reads all along.
///
/// **One poller per machine.** The processes that share a state file apply
/// the log to one file, so one of them reading the log is enough. With
/// ``Configuration/pollsOncePerMachine`` (the default), each round first
/// takes or keeps the state file's *poller lease* (docs/FORMAT.md section
/// 1.10). The process that holds it — the poller — runs the rounds above.
/// Every other process follows it: its rounds read only the local update id
/// from the shared file, without a datastore call, wake the waiters whose
/// id it reached, and wake this process's change streams when it moved. When
/// the poller exits, closes its cache or is killed, the kernel releases the
/// lease and another process takes it at its next round — within one
/// ``Configuration/interval``, as followers do not back off. Role changes
/// are logged (info). ``isPoller`` tells which role the last round had.
///
/// **Shutdown.** On graceful shutdown (or cancellation) the round in
/// progress finishes, ``run()`` returns, and every pending
/// ``waitUntilApplied(through:)`` fails with
/// ``BackgroundUpdaterError/shutDown``, as do later calls.
public final class BackgroundUpdater: Service, Sendable {
    /// What one round did, for a round observer
    /// (``init(cache:configuration:logger:roundObserver:)``).
    package struct RoundReport: Sendable {
        /// Whether the round polled the datastore (this process was the
        /// poller, or ``Configuration/pollsOncePerMachine`` is off); false
        /// when it followed another process's poller.
        package var polled: Bool
        /// Why the round failed, or nil when it succeeded.
        package var failure: CacheError?
    }

    /// What a waiter is woken with.
    private enum Wake {
        case applied
        case failed(BackgroundUpdaterError)
    }

    /// The state shared by the loop, the waiters and ``requestUpdate()``.
    private struct State {
        /// Callers of `waitUntilApplied`, by a number of their own.
        var waiters: [Int: (updateID: UInt64, continuation: CheckedContinuation<Wake, Never>)] = [:]
        var nextWaiter = 0
        /// The loop ended; waiters fail at once.
        var isShutDown = false
        /// Rounds that failed in a row.
        var failures = 0
        /// Whether the last round polled the datastore (see ``BackgroundUpdater/isPoller``).
        var polled = false
        /// Whether the last election made this process the poller; nil
        /// before the first, so that the first role is logged too.
        var elected: Bool?
        /// The local update id the last successful round saw, to wake the
        /// change streams when another process moved it.
        var lastSeenUpdateID: UInt64?
    }

    /// The cache kept current.
    public let cache: SharedCache
    /// When and how often it runs.
    public let configuration: Configuration
    private let logger: Logger
    private let state = Locked(State())
    /// Rung to ask for a round now.
    private let doorbell = Doorbell()
    /// Called after each round.
    private let roundObserver: (@Sendable (RoundReport) -> Void)?

    /// An updater for `cache`. It does nothing until ``run()``.
    ///
    /// - Parameters:
    ///   - cache: The cache to keep current.
    ///   - configuration: The interval, the backoff after failures, and
    ///     whether the processes of the machine elect one poller.
    ///   - logger: Where rounds that apply records (debug), failures
    ///     (warning), recoveries (notice) and changes between polling the
    ///     datastore and following another process's poller (info) are
    ///     logged. Default: the cache's ``SharedCache/Configuration/logger``.
    public convenience init(cache: SharedCache, configuration: Configuration = Configuration(), logger: Logger? = nil) {
        self.init(cache: cache, configuration: configuration, logger: logger, roundObserver: nil)
    }

    /// An updater for `cache` that calls `roundObserver` after each round,
    /// on the updater's task (for the package's tools and test helper).
    package init(
        cache: SharedCache, configuration: Configuration = Configuration(), logger: Logger? = nil,
        roundObserver: (@Sendable (RoundReport) -> Void)?
    ) {
        self.cache = cache
        self.configuration = configuration
        self.logger = logger ?? cache.configuration.logger
        self.roundObserver = roundObserver
    }

    /// Runs rounds until graceful shutdown or cancellation (the `Service`
    /// entry point). Never throws: failures are retried with backoff. When
    /// it returns, this process gives up the poller lease if it held it, so
    /// that another process polls from its next round on; run one updater
    /// per cache.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
        if configuration.pollsOncePerMachine { cache.releasePollerLease() }
        state.withLock { state in
            state.polled = false
            state.elected = nil
        }
        cache.metrics.poller.record(0)
        let waiters = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            state.isShutDown = true
            defer { state.waiters.removeAll() }
            return state.waiters.values.map(\.continuation)
        }
        for waiter in waiters { waiter.resume(returning: .failed(.shutDown)) }
        logger.debug("background updater stopped", metadata: ["state": "\(cache.statePath)"])
    }

    /// Asks for a round now instead of at the end of the interval (or of
    /// the current backoff). In a process that follows another's poller
    /// (``Configuration/pollsOncePerMachine``), that round looks at the
    /// shared state file and the poller lease only; it does not read the log.
    public func requestUpdate() {
        doorbell.ring()
    }

    /// Whether the last round polled the datastore: this process holds the
    /// state file's poller lease (or could not ask for it, and polls rather
    /// than leave the file without a poller), or
    /// ``Configuration/pollsOncePerMachine`` is off. False before the first
    /// round, after ``run()`` returned, and while this process follows
    /// another process's poller.
    public var isPoller: Bool {
        state.withLock { $0.polled }
    }

    /// Returns once the local state has applied the log through `updateID`
    /// (at once if it already has), asking for a round if needed. In a
    /// process that follows another's poller it returns once the poller has
    /// applied `updateID` to the shared file and a round of this process has
    /// seen it (see ``Configuration/pollsOncePerMachine``).
    ///
    /// - Throws: ``BackgroundUpdaterError/shutDown`` when the updater stops
    ///   (or has stopped) first; ``BackgroundUpdaterError/cancelled`` when
    ///   the calling task is cancelled; ``BackgroundUpdaterError/cache(_:)``
    ///   when the local update id cannot be read.
    public func waitUntilApplied(through updateID: UInt64) async throws(BackgroundUpdaterError) {
        if try reached(updateID) { return }
        let number = state.withLock { state -> Int in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let wake = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate: Wake? = state.withLock { state in
                    if state.isShutDown { return .failed(.shutDown) }
                    if Task.isCancelled { return .failed(.cancelled) }
                    state.waiters[number] = (updateID, continuation)
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                } else {
                    requestUpdate()
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: number) }
            waiter?.continuation.resume(returning: .failed(.cancelled))
        }
        if case .failed(let error) = wake { throw error }
    }

    /// How many rounds have failed in a row (0 after a success).
    public var consecutiveFailures: Int {
        state.withLock { $0.failures }
    }

    // MARK: The loop

    private func loop() async {
        while !Task.isCancelled {
            // A ring during the round (a new waiter, a request) means another round at once.
            let generation = doorbell.generation
            let polled = configuration.pollsOncePerMachine ? electPoller() : true
            state.withLock { $0.polled = polled }
            cache.metrics.poller.record(polled ? 1 : 0)
            let failure = polled ? await poll() : follow()
            let (failures, wait) = state.withLock { state -> (Int, Duration) in
                state.failures = failure == nil ? 0 : state.failures + 1
                return (state.failures, Self.delay(afterFailures: state.failures, configuration: configuration))
            }
            if let failure {
                logger.warning("update failed", metadata: [
                    "state": "\(cache.statePath)", "error": "\(failure)",
                    "failures_in_a_row": "\(failures)", "retry_in": "\(wait)",
                ])
            }
            roundObserver?(RoundReport(polled: polled, failure: failure))
            await doorbell.sleep(for: wait, unlessRungSince: generation)
        }
    }

    /// Takes or keeps the poller lease of the cache's state file; returns
    /// whether this process polls the datastore this round, and logs when
    /// that changed.
    private func electPoller() -> Bool {
        let polls: Bool
        do throws(CacheError) {
            polls = try cache.holdsPollerLease()
        } catch {
            // The election only decides who reads the log; without an
            // answer this process polls, and the round reports whatever is
            // wrong with the cache. A warning: a process that polls beside
            // the poller costs the datastore reads and should be seen.
            logger.warning("the poller lease could not be checked; polling", metadata: [
                "state": "\(cache.statePath)", "error": "\(error)",
            ])
            return true
        }
        let previous = state.withLock { state -> Bool? in
            defer { state.elected = polls }
            return state.elected
        }
        if previous != polls {
            if polls {
                logger.info("polling the log for the processes of this state file", metadata: ["state": "\(cache.statePath)"])
            } else {
                logger.info("following another process's poller", metadata: ["state": "\(cache.statePath)"])
            }
        }
        return polls
    }

    /// A round of the poller (or of an updater that does not take part in
    /// the election); returns its failure, or nil when it succeeded.
    ///
    /// The round is one ``SharedCache/update(through:)``: when nothing is
    /// new that is one datastore read, which also reports the log's newest
    /// id for the lag gauge (``UpdateSummary/newestLogUpdateID``).
    private func poll() async -> CacheError? {
        do throws(CacheError) {
            let local = try cache.updateID()
            let summary = try await cache.update()
            // A datastore that does not report the log's end with its pages
            // (the file datastore, whose reads are local) is asked for it.
            var newest = summary.newestLogUpdateID
            if newest == nil { newest = try? await cache.datastore.latestUpdateID() }
            if let newest {
                cache.metrics.recordLag(updateIDs: newest > summary.updateID ? newest - summary.updateID : 0)
            }
            if summary.recordsApplied > 0 {
                logger.debug("applied the log", metadata: [
                    "state": "\(cache.statePath)", "update_id": "\(summary.updateID)",
                    "records": "\(summary.recordsApplied)", "update_id_before": "\(local)",
                ])
            }
            if state.withLock({ $0.failures }) > 0 {
                logger.notice("updates work again", metadata: ["state": "\(cache.statePath)", "update_id": "\(summary.updateID)"])
            }
            // `update()` woke the change streams if it applied records; an
            // explicit update of another process may have moved the state too.
            if noteUpdateID(summary.updateID), summary.recordsApplied == 0 { cache.changeDoorbell.ring() }
            // The file's gauges every round (at most once a second): another
            // process may have applied what changed the file.
            cache.metrics.recordFileIfDue { try? cache.statistics() }
            wakeWaiters(reached: summary.updateID)
            return nil
        } catch {
            cache.metrics.recordLag(updateIDs: nil)
            return error
        }
    }

    /// A round of a process that follows another's poller: reads the local
    /// update id from the shared file (no datastore call), wakes this
    /// process's change streams when it moved, and the waiters it reached.
    /// Records no lag (see ``CacheMetrics``). Returns its failure, or nil.
    private func follow() -> CacheError? {
        do throws(CacheError) {
            let local = try cache.updateID()
            cache.metrics.localUpdateID.record(local)
            if noteUpdateID(local) {
                cache.changeDoorbell.ring()
                logger.debug("the poller applied the log", metadata: ["state": "\(cache.statePath)", "update_id": "\(local)"])
            }
            if state.withLock({ $0.failures }) > 0 {
                logger.notice("updates work again", metadata: ["state": "\(cache.statePath)", "update_id": "\(local)"])
            }
            cache.metrics.recordFileIfDue { try? cache.statistics() }
            wakeWaiters(reached: local)
            return nil
        } catch {
            return error
        }
    }

    /// Remembers `updateID` as the local update id seen last; returns
    /// whether it moved since the last round that saw one.
    private func noteUpdateID(_ updateID: UInt64) -> Bool {
        state.withLock { state in
            defer { state.lastSeenUpdateID = updateID }
            return state.lastSeenUpdateID.map { updateID > $0 } ?? false
        }
    }

    /// Resumes the waiters whose update id is at most `reached`.
    private func wakeWaiters(reached: UInt64) {
        let ready = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            let numbers = state.waiters.filter { $0.value.updateID <= reached }.map(\.key)
            return numbers.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for waiter in ready { waiter.resume(returning: .applied) }
    }

    /// Whether the local state has reached `updateID`.
    private func reached(_ updateID: UInt64) throws(BackgroundUpdaterError) -> Bool {
        do { return try cache.updateID() >= updateID } catch { throw .cache(error) }
    }

    /// The wait before the next round after `failures` failed rounds in a
    /// row: the interval, doubled per failure, at most the maximum backoff.
    static func delay(afterFailures failures: Int, configuration: Configuration) -> Duration {
        guard failures > 0 else { return configuration.interval }
        let factor = 1 << min(failures, 30)
        return min(configuration.maximumBackoff, configuration.interval * factor)
    }
}
