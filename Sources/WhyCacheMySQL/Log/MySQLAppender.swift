import Synchronization
import Dispatch
import WhyCache

/// Appends records for one process: groups the appends that wait at the same
/// time into one transaction (group commit), with up to
/// ``MySQLConfiguration/maximumConcurrentAppends`` transactions in flight on
/// different pooled connections.
///
/// Appends of all processes are ordered by the counter row lock
/// (docs/FORMAT.md §4.3); grouping lets many concurrent `set` calls share
/// one lock hold, one commit and one disk flush on the server. (A second
/// transaction in flight, when configured, queues for the lock while the
/// first one commits.)
///
/// **One blocking hop per busy period.** A worker borrows a connection and
/// runs on that connection's thread, taking transaction after transaction
/// off the queue until it is empty; each transaction is one request
/// (``MySQLAppendRequest``) unless it is too large for one. A caller's task
/// is suspended once, when it queues, and resumed once, when its
/// transaction's answer is in: no statement waits for a hop between Swift's
/// cooperative pool and the connection's thread.
///
/// **Gathering the next transaction.** When a transaction of several
/// callers returns, those callers still have to apply their records before
/// they can queue their next appends; a worker that left at once would
/// take only the appends queued meanwhile, and concurrent writers would
/// settle into two cohorts taking turns, each transaction carrying half of
/// them. So the worker waits, up to ``MySQLConfiguration/appendGatherWait``
/// and never more than half the time the returned transaction took, until
/// the queue holds the callers just resumed as well as the appends already
/// waiting, and leaves the moment it does. A transaction of one caller is
/// followed at once: a lone writer never waits.
final class MySQLAppender: Sendable {
    private let pool: MySQLConnectionPool
    private let log: MySQLLogTable
    private let recentPage: MySQLRecentPage
    private let maximumWorkers: Int
    private let gatherWait: Duration
    private let state = Locked(State())

    /// Signalled once when the queue reaches `State.gatherTarget`.
    private let gathered = DispatchSemaphore(value: 0)

    /// Whether appends of one record try the append procedure: until a call
    /// finds it missing or not allowed, and again after ``procedureMayExist()``.
    private let callsProcedure = Atomic<Bool>(true)

    /// The most records one transaction takes from the queue.
    private static let recordsPerTransaction = 4_096

    /// The payload bytes after which a transaction takes no more appends.
    private static let bytesPerTransaction = 8 << 20

    /// **Invariant.** `workers` counts the workers running; a worker stops
    /// only by taking an empty queue in ``nextBatch()``, under the same lock
    /// under which ``append(_:)`` queues and starts a worker when fewer than
    /// `maximumWorkers` run. So a queued append always has a worker that
    /// will take it.
    ///
    /// **Invariant.** `gatherTarget` is set only while one worker waits on
    /// `gathered` (``gatherReturningCallers(_:upTo:)``), and whoever clears
    /// it owes `gathered` exactly one signal: ``append(_:)`` when the queue
    /// reaches the target, else the waiting worker itself when its time is
    /// up. So the semaphore is back at zero whenever no worker waits.
    private struct State: ~Copyable {
        var queue: [PendingAppend] = []
        var workers = 0
        /// The queue length a gathering worker waits for.
        var gatherTarget: Int?
    }

    private struct PendingAppend: Sendable {
        var payloads: [[UInt8]]
        var continuation: CheckedContinuation<Result<[UInt64], DatastoreError>, Never>
    }

    /// An appender writing to `log` through `pool`, keeping the page each
    /// append reads in `recentPage`, with up to `maximumWorkers`
    /// transactions in flight,
    /// waiting up to `gatherWait` for the callers of a returned transaction
    /// to queue again.
    init(pool: MySQLConnectionPool, log: MySQLLogTable, recentPage: MySQLRecentPage, maximumWorkers: Int, gatherWait: Duration) {
        self.pool = pool
        self.log = log
        self.recentPage = recentPage
        self.maximumWorkers = maximumWorkers
        self.gatherWait = gatherWait
    }

    /// The appends queued and not yet taken into a transaction, and the
    /// workers running (what tests wait for).
    var queue: (appends: Int, workers: Int) {
        state.withLock { ($0.queue.count, $0.workers) }
    }

    /// Appends `payloads` as consecutive records and returns their ids. When
    /// it returns, the page its transaction read after committing is in
    /// `recentPage`.
    func append(_ payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt64], DatastoreError>, Never>) in
            let (startsWorker, endsGathering) = state.withLock { state -> (Bool, Bool) in
                state.queue.append(PendingAppend(payloads: payloads, continuation: continuation))
                var endsGathering = false
                if let target = state.gatherTarget, state.queue.count >= target {
                    state.gatherTarget = nil
                    endsGathering = true
                }
                guard state.workers < maximumWorkers else { return (false, endsGathering) }
                state.workers += 1
                return (true, endsGathering)
            }
            if endsGathering {
                gathered.signal()
            }
            if startsWorker {
                Task { await self.work() }
            }
        }
        return try result.get()
    }

    /// Takes transactions off the queue and runs them on borrowed
    /// connections until the queue is empty.
    ///
    /// A transaction is taken before a connection is asked for, so a
    /// connection that cannot be opened fails that transaction, never one
    /// that was queued while the attempt ran (after the server came back).
    private func work() async {
        while let batch = nextBatch() {
            do throws(MySQLPoolError<MySQLClientError>) {
                // An idle connection the server had closed is replaced by the
                // pool before anything is sent on it (``drain(startingWith:on:)``).
                let retired = try await pool.run { connection throws(MySQLClientError) -> Bool in
                    try self.drain(startingWith: batch, on: connection)
                }
                if retired { return }
            } catch {
                finish(batch, with: .failure(error.clientError.datastoreError(operation: "append", location: log.location)))
            }
        }
    }

    /// Runs `first`, then transactions from the queue, on `connection`, on
    /// its thread, until the queue is empty (returns `true`: this worker has
    /// stopped) or the connection broke (`false`).
    ///
    /// - Throws: ``closedByServer``, before anything is sent, when the
    ///   server has closed the connection while it sat idle in the pool (it
    ///   restarted, or timed the connection out): a request sent on it would
    ///   fail after being sent, with an unknown outcome. The check needs no
    ///   round trip, and the pool then runs this again on another connection.
    private func drain(startingWith first: [PendingAppend], on connection: MySQLConnection) throws(MySQLClientError) -> Bool {
        if connection.hasBeenClosedByServer() { throw Self.closedByServer }
        var batch = first
        while true {
            let started = ContinuousClock.now
            let result = commit(batch.flatMap(\.payloads), on: connection)
            let took = started.duration(to: .now)
            finish(batch, with: result)
            if connection.isBroken { return false }
            if batch.count > 1 {
                gatherReturningCallers(batch.count, upTo: min(gatherWait, took / 2))
            }
            guard let next = nextBatch() else { return true }
            batch = next
        }
    }

    /// The error of a pooled connection the server closed while it was idle
    /// (libmariadb's "server has gone away"): it breaks the connection.
    static let closedByServer = MySQLClientError(code: 2006, sqlState: "HY000", message: "the server closed the connection while it was idle")

    /// Resumes the callers of `batch` with their parts of `result`.
    private func finish(_ batch: [PendingAppend], with result: Result<[UInt64], DatastoreError>) {
        var start = 0
        for append in batch {
            let count = append.payloads.count
            append.continuation.resume(returning: result.map { Array($0[start..<start + count]) })
            start += count
        }
    }

    /// Waits, blocking this worker's thread for at most `limit`, until the
    /// queue holds `callers` more appends than it holds now: the callers of
    /// the transaction that just returned, queueing their next appends.
    /// Returns at once when another worker is gathering.
    private func gatherReturningCallers(_ callers: Int, upTo limit: Duration) {
        guard limit > .zero else { return }
        let waits = state.withLock { state -> Bool in
            guard state.gatherTarget == nil else { return false }
            state.gatherTarget = state.queue.count + callers
            return true
        }
        guard waits else { return }
        let (seconds, attoseconds) = limit.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        guard gathered.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .timedOut else { return }
        let signalled = state.withLock { state -> Bool in
            guard state.gatherTarget != nil else { return true }
            state.gatherTarget = nil
            return false
        }
        // An append reached the target as the time ran out: its signal is
        // on its way (it cleared the target under the lock, then signals).
        if signalled { gathered.wait() }
    }

    /// Takes the appends of the next transaction off the queue, or retires
    /// this worker when the queue is empty.
    private func nextBatch() -> [PendingAppend]? {
        state.withLock { state -> [PendingAppend]? in
            guard !state.queue.isEmpty else {
                state.workers -= 1
                return nil
            }
            var records = 0
            var bytes = 0
            var count = 0
            while count < state.queue.count,
                count == 0 || (records + state.queue[count].payloads.count <= Self.recordsPerTransaction && bytes < Self.bytesPerTransaction)
            {
                records += state.queue[count].payloads.count
                bytes += state.queue[count].payloads.reduce(0) { $0 + $1.count }
                count += 1
            }
            defer { state.queue.removeFirst(count) }
            return Array(state.queue.prefix(count))
        }
    }

    /// Lets appends of one record try the append procedure again (the
    /// tables were just created or checked, and with them the procedure).
    func procedureMayExist() {
        callsProcedure.store(true, ordering: .relaxed)
    }

    /// Runs one append transaction on `connection` (blocking): one call of
    /// the append procedure for one record of one part, one request when it
    /// fits, else statements in a transaction. What the append left in the
    /// log goes to `recentPage` before anyone learns the ids.
    ///
    /// A failed transaction is never retried: one that failed before its
    /// commit changed nothing and its callers get the error; one whose
    /// outcome is unknown fails with `appendOutcomeUnknown`. (A call that
    /// finds the procedure missing ran nothing; the request follows it.)
    private func commit(_ payloads: [[UInt8]], on connection: MySQLConnection) -> Result<[UInt64], DatastoreError> {
        let plan = MySQLAppendPlan(payloads: payloads, compacting: log.compactsSingleKeyRecords)
        let pageAfter = recentPage.pageAfterForNextAppend
        let outcome: MySQLAppendOutcome
        do throws(MySQLTransactionError) {
            outcome = try append(plan, pageAfter: pageAfter, on: connection)
        } catch {
            if case .commitFailed(let cause) = error, cause.breaksConnection {
                return .failure(.appendOutcomeUnknown(reason: "\(log.location): \(cause.message) (MySQL error \(cause.code))"))
            }
            return .failure(error.datastoreError(operation: "append", location: log.location))
        }
        recentPage.record(ids: outcome.ids, payloads: payloads, plan: plan, page: outcome.page, pageAfter: pageAfter)
        return .success(outcome.ids)
    }

    /// Appends what `plan` says on `connection` the cheapest way it can.
    private func append(_ plan: MySQLAppendPlan, pageAfter: UInt64?, on connection: MySQLConnection) throws(MySQLTransactionError) -> MySQLAppendOutcome {
        if MySQLAppendCall.fits(plan), callsProcedure.load(ordering: .relaxed) {
            do throws(MySQLTransactionError) {
                return try MySQLAppendCall(plan: plan, log: log, pageAfter: pageAfter).run(on: connection)
            } catch {
                guard MySQLAppendCall.meansProcedureUnavailable(error) else { throw error }
                callsProcedure.store(false, ordering: .relaxed)
            }
        }
        if MySQLAppendRequest.fits(plan) {
            return try MySQLAppendRequest(plan: plan, log: log, pageAfter: pageAfter).run(on: connection)
        }
        let log = log
        let ids = try connection.transaction { () throws(MySQLWorkError) -> [UInt64] in try log.append(plan, on: connection) }
        return MySQLAppendOutcome(ids: ids, page: nil)
    }
}
