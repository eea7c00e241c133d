#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle
import Synchronization

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
/// **Shutdown.** On graceful shutdown (or cancellation) the round in
/// progress finishes, ``run()`` returns, and every pending
/// ``waitUntilApplied(through:)`` fails with
/// ``BackgroundUpdaterError/shutDown``, as do later calls.
public final class BackgroundUpdater: Service, Sendable {
    /// When and how often the updater runs.
    public struct Configuration: Sendable {
        /// The time between two rounds when nothing asks for one sooner.
        public var interval: Duration
        /// The longest wait after repeated failures.
        public var maximumBackoff: Duration

        /// A configuration with `interval` between rounds, backing off up
        /// to `maximumBackoff` (at least `interval`).
        public init(interval: Duration = .seconds(1), maximumBackoff: Duration = .seconds(30)) {
            self.interval = interval
            self.maximumBackoff = max(interval, maximumBackoff)
        }
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
    }

    /// The cache kept current.
    public let cache: SharedCache
    /// When and how often it runs.
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    /// Rung to ask for a round now.
    private let doorbell = Doorbell()

    /// An updater for `cache`. It does nothing until ``run()``.
    ///
    /// - Parameter logger: Where rounds that apply records (debug), failures
    ///   (warning) and recoveries (notice) are logged. Default: the cache's
    ///   ``SharedCache/Configuration/logger``.
    public init(cache: SharedCache, configuration: Configuration = Configuration(), logger: Logger? = nil) {
        self.cache = cache
        self.configuration = configuration
        self.logger = logger ?? cache.configuration.logger
    }

    /// Runs rounds until graceful shutdown or cancellation (the `Service`
    /// entry point). Never throws: failures are retried with backoff.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
        let waiters = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            state.isShutDown = true
            defer { state.waiters.removeAll() }
            return state.waiters.values.map(\.continuation)
        }
        for waiter in waiters { waiter.resume(returning: .failed(.shutDown)) }
        logger.debug("background updater stopped", metadata: ["state": "\(cache.statePath)"])
    }

    /// Asks for a round now instead of at the end of the interval (or of
    /// the current backoff).
    public func requestUpdate() {
        doorbell.ring()
    }

    /// Returns once the local state has applied the log through `updateID`
    /// (at once if it already has), asking for a round if needed.
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
            let failure = await round()
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
            await doorbell.sleep(for: wait, unlessRungSince: generation)
        }
    }

    /// One round; returns its failure, or nil when it succeeded.
    ///
    /// The round is one ``SharedCache/update(through:)``: when nothing is
    /// new that is one datastore read, which also reports the log's newest
    /// id for the lag gauge (``UpdateSummary/newestLogUpdateID``).
    private func round() async -> CacheError? {
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
            wakeWaiters(reached: summary.updateID)
            return nil
        } catch {
            cache.metrics.recordLag(updateIDs: nil)
            return error
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

/// Why ``BackgroundUpdater/waitUntilApplied(through:)`` returned without
/// the update id being applied.
public enum BackgroundUpdaterError: Error, Sendable, CustomStringConvertible {
    /// The updater stopped (graceful shutdown or cancellation of its `run`).
    case shutDown
    /// The waiting task was cancelled.
    case cancelled
    /// The cache failed (closed, or its state file failed).
    case cache(CacheError)

    public var description: String {
        switch self {
        case .shutDown: "the background updater has shut down"
        case .cancelled: "the wait was cancelled"
        case .cache(let error): error.description
        }
    }
}
