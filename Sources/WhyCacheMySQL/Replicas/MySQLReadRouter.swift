import WhyCache

/// Sends each read of the log to a replica that can answer it, or to the
/// primary; see ``MySQLReplicaConfiguration`` for the policy and
/// `docs/FORMAT.md` §4.6 for why the answers are consistent.
///
/// **Invariants.**
/// - `seen` only grows: it is the furthest counter row (newest id, removed
///   through) this datastore has read from any server, or implied by its
///   own appends. A read is answered only from a server whose counter row
///   covers `seen` (and the caller's `floor`); the primary always does.
///   So the answers of one datastore never move backwards, and a writer
///   reads the records it appended.
/// - A replica in backoff (`retryAt` in the future) receives no read.
/// - Every read a replica answered updated its `shown` position and, when
///   it lagged more than the maximum, put it in backoff; such an answer is
///   discarded, never returned.
final class MySQLReadRouter: Sendable {
    /// A replica and the pool of connections to it.
    struct Replica: Sendable {
        let endpoint: MySQLEndpoint
        let pool: MySQLConnectionPool
    }

    /// What a read returns: its value and the counter row it was read with.
    struct Observed<Value: Sendable>: Sendable {
        var value: Value
        var meta: MySQLLogTable.Meta
    }

    /// The primary's pool (shared with appends and maintenance).
    let primary: MySQLConnectionPool
    /// The replicas in this datastore's order of preference.
    let replicas: [Replica]
    private let policy: MySQLReplicaConfiguration
    private let log: MySQLLogTable
    private let state: Locked<State>

    /// A position in the log as a counter row shows it.
    struct Position: Sendable, Hashable {
        var lastUpdateID: UInt64 = 0
        var removedThrough: UInt64 = 0

        /// Whether a server showing `self` holds everything `other` shows.
        func covers(_ other: Position) -> Bool {
            lastUpdateID >= other.lastUpdateID && removedThrough >= other.removedThrough
        }

        mutating func advance(to other: Position) {
            lastUpdateID = max(lastUpdateID, other.lastUpdateID)
            removedThrough = max(removedThrough, other.removedThrough)
        }
    }

    /// What the router knows of one replica.
    struct Health: Sendable {
        /// Failures (errors, timeouts, lag over the maximum) in a row.
        var failures = 0
        /// No read goes to the replica before this instant.
        var retryAt: ContinuousClock.Instant?
        /// The furthest counter row the replica answered with.
        var shown = Position()
        /// Why the replica was last left, for diagnostics.
        var lastProblem: String?
        /// Reads it answered.
        var reads: UInt64 = 0
    }

    private struct State {
        var seen = Position()
        var health: [Health]
        /// Ids the primary had handed out, and when that was known (from lag
        /// checks and from this datastore's appends), oldest first, at most
        /// ``maximumSamples``. A replica lags by the age of the oldest one
        /// it does not show.
        var samples: [(id: UInt64, at: ContinuousClock.Instant)] = []
        /// When the primary's counter was last read for a lag check.
        var lastLagCheck: ContinuousClock.Instant?
        /// The replica that answered the last replica read, if any.
        var current: Int?
    }

    /// The most primary samples kept (when full, the second oldest goes:
    /// the oldest decides the lag of a stuck replica).
    private static let maximumSamples = 64

    private let clock = ContinuousClock()

    init(primary: MySQLConnectionPool, configuration: MySQLConfiguration, log: MySQLLogTable) {
        self.primary = primary
        self.policy = configuration.replicas
        self.log = log
        // A random order per datastore spreads a fleet evenly over the replicas.
        self.replicas = configuration.replicas.endpoints.shuffled().map { endpoint in
            Replica(endpoint: endpoint, pool: MySQLConnectionPool(configuration: configuration.forReplica(endpoint)))
        }
        self.state = Locked(State(health: Array(repeating: Health(), count: replicas.count)))
    }

    // MARK: Reading

    /// Runs `body`, a read of the log that also returns the counter row it
    /// saw, on the first healthy replica whose answer covers what this
    /// datastore has seen and `floor` (a newest id the caller knows the log
    /// to hold); else on the primary.
    ///
    /// - Throws: the primary's error, or a replica's
    ///   ``DatastoreError/historyRewritten(firstRetainedUpdateID:)`` (which a
    ///   replica reports only after the primary did: it shows a prefix of the
    ///   primary's commits). Every other replica error moves the read on.
    func read<Value: Sendable>(
        _ operation: String, floor: UInt64 = 0,
        _ body: @escaping @Sendable (MySQLConnection) throws(MySQLWorkError) -> Observed<Value>
    ) async throws(DatastoreError) -> Value {
        for index in candidates() {
            await checkLagIfDue()
            let replica = replicas[index]
            let observed: Observed<Value>
            do throws(MySQLPoolError<MySQLWorkError>) {
                observed = try await replica.pool.run(body)
            } catch {
                let failure = error.datastoreError(operation: operation, location: location(of: replica))
                if case .historyRewritten(let first) = failure {
                    noteRemoved(through: first - 1, by: index)
                    throw failure
                }
                leave(index, because: failure.description)
                continue
            }
            if let value = accept(observed, from: index, floor: floor) { return value }
        }
        let observed: Observed<Value>
        do throws(MySQLPoolError<MySQLWorkError>) {
            observed = try await primary.run(body)
        } catch {
            let failure = error.datastoreError(operation: operation, location: primary.configuration.location)
            if case .historyRewritten(let first) = failure { noteRemoved(through: first - 1, by: nil) }
            throw failure
        }
        state.withLock { state in
            state.seen.advance(to: Position(observed.meta))
            state.current = nil
        }
        return observed.value
    }

    /// Notes that this datastore's append received ids through `lastID`: the
    /// primary's counter is at least that now (read-your-writes, and a free
    /// lag sample).
    func noteAppended(through lastID: UInt64) {
        guard !replicas.isEmpty else { return }
        state.withLock { state in
            state.seen.lastUpdateID = max(state.seen.lastUpdateID, lastID)
            Self.addSample(id: lastID, at: clock.now, to: &state)
        }
    }

    /// The newest counter row any answer of this datastore has shown (or
    /// its own appends implied, with replicas).
    var seen: Position {
        state.withLock { $0.seen }
    }

    /// Notes an answer given outside ``read(_:floor:_:)``: the page that
    /// the primary's counter row `meta` stands for, answered from what this
    /// datastore's appends wrote or read (``MySQLRecentPage``).
    func noteObserved(_ meta: MySQLLogTable.Meta) {
        state.withLock { $0.seen.advance(to: Position(meta)) }
    }

    // MARK: Diagnostics

    /// The status of each replica, in this datastore's order of preference.
    func replicaStatus() -> [MySQLReplicaStatus] {
        let now = clock.now
        return state.withLock { state in
            replicas.indices.map { index in
                let health = state.health[index]
                let retryIn = health.retryAt.map { $0 > now ? now.duration(to: $0) : .zero }
                return MySQLReplicaStatus(
                    endpoint: replicas[index].endpoint, isCurrent: state.current == index,
                    failuresInARow: health.failures, retryIn: health.failures > 0 ? retryIn : nil,
                    lastProblem: health.lastProblem, newestUpdateIDShown: health.shown.lastUpdateID, reads: health.reads)
            }
        }
    }

    // MARK: Private

    /// The replicas a read may try now, in order of preference.
    private func candidates() -> [Int] {
        guard !replicas.isEmpty else { return [] }
        let now = clock.now
        return state.withLock { state in
            replicas.indices.filter { index in state.health[index].retryAt.map { $0 <= now } ?? true }
        }
    }

    /// Takes `observed` from replica `index` if it covers what was seen and
    /// `floor` and the replica does not lag too much; updates what is known.
    private func accept<Value: Sendable>(_ observed: Observed<Value>, from index: Int, floor: UInt64) -> Value? {
        let now = clock.now
        let position = Position(observed.meta)
        let verdict = state.withLock { state -> Verdict in
            state.health[index].shown.advance(to: position)
            var required = state.seen
            required.lastUpdateID = max(required.lastUpdateID, floor)
            // The oldest id the primary had that this replica does not show.
            if let oldest = state.samples.first(where: { $0.id > position.lastUpdateID }),
                oldest.at.duration(to: now) > policy.maximumLag
            {
                return .lagging(
                    "it lags more than \(policy.maximumLag) behind the primary (it shows update \(position.lastUpdateID); the primary had \(oldest.id) \(oldest.at.duration(to: now)) ago)")
            }
            Self.pruneSamples(in: &state)
            guard position.covers(required) else { return .behindThisReader }
            state.seen.advance(to: position)
            state.health[index].failures = 0
            state.health[index].retryAt = nil
            state.health[index].reads += 1
            state.current = index
            return .taken
        }
        switch verdict {
        case .taken: return observed.value
        case .behindThisReader: return nil
        case .lagging(let reason):
            leave(index, because: reason)
            return nil
        }
    }

    /// What ``accept(_:from:floor:)`` decided about a replica's answer.
    private enum Verdict {
        /// The answer covers what was seen: it is returned.
        case taken
        /// The replica is behind what this datastore showed its callers (or
        /// the caller's position): the read moves on, the replica stays.
        case behindThisReader
        /// The replica lags more than the bound: it is left, for `reason`.
        case lagging(String)
    }

    /// Puts replica `index` in backoff.
    private func leave(_ index: Int, because reason: String) {
        let now = clock.now
        state.withLock { state in
            var health = state.health[index]
            health.failures += 1
            let factor = 1 << min(health.failures - 1, 30)
            health.retryAt = now + min(policy.maximumRetryDelay, policy.retryDelay * factor)
            health.lastProblem = reason
            state.health[index] = health
            if state.current == index { state.current = nil }
        }
    }

    /// Notes a history removal through `removed` reported by replica `index`
    /// (nil: the primary).
    private func noteRemoved(through removed: UInt64, by index: Int?) {
        state.withLock { state in
            state.seen.removedThrough = max(state.seen.removedThrough, removed)
            if let index { state.health[index].shown.removedThrough = max(state.health[index].shown.removedThrough, removed) }
        }
    }

    /// Reads the primary's counter for the lag measure when a check is due.
    /// A primary that fails is ignored here (reads go on from the replica).
    private func checkLagIfDue() async {
        let now = clock.now
        let due = state.withLock { state -> Bool in
            guard state.lastLagCheck.map({ $0.duration(to: now) >= policy.lagCheckInterval }) ?? true else { return false }
            state.lastLagCheck = now
            return true
        }
        guard due else { return }
        let log = log
        let meta: MySQLLogTable.Meta
        do throws(MySQLPoolError<MySQLWorkError>) {
            meta = try await primary.run { connection throws(MySQLWorkError) in try log.meta(on: connection) }
        } catch {
            return
        }
        // A sample is not something a caller has seen: it measures lag and
        // does not raise what a replica must cover.
        state.withLock { state in Self.addSample(id: meta.lastUpdateID, at: now, to: &state) }
    }

    private static func addSample(id: UInt64, at instant: ContinuousClock.Instant, to state: inout State) {
        if let last = state.samples.last, last.id >= id { return }
        if state.samples.count >= maximumSamples { state.samples.remove(at: 1) }
        state.samples.append((id, instant))
    }

    /// Drops the samples every replica that is not in backoff already shows.
    private static func pruneSamples(in state: inout State) {
        let active = state.health.filter { $0.failures == 0 }
        guard !active.isEmpty else { return }
        let shownByAll = active.map(\.shown.lastUpdateID).min() ?? 0
        state.samples.removeAll { $0.id <= shownByAll }
    }

    private func location(of replica: Replica) -> String {
        replica.pool.configuration.location + " (replica)"
    }
}

extension MySQLReadRouter.Position {
    init(_ meta: MySQLLogTable.Meta) {
        self.init(lastUpdateID: meta.lastUpdateID, removedThrough: meta.removedThrough)
    }
}

/// What a ``MySQLDatastore`` knows of one of its replicas
/// (``MySQLDatastore/replicaStatus()``).
public struct MySQLReplicaStatus: Sendable, Hashable, CustomStringConvertible {
    /// Where the replica listens.
    public var endpoint: MySQLEndpoint
    /// Whether the datastore's last replica read went to it.
    public var isCurrent: Bool
    /// Failures (errors, timeouts, lag beyond the maximum) since it last answered.
    public var failuresInARow: Int
    /// How long until it is tried again, while it is left.
    public var retryIn: Duration?
    /// Why it was last left.
    public var lastProblem: String?
    /// The newest update id it has shown.
    public var newestUpdateIDShown: UInt64
    /// The reads it answered.
    public var reads: UInt64

    public var description: String {
        var text = "\(endpoint): \(isCurrent ? "current" : "standby"), shows update \(newestUpdateIDShown), \(reads) reads"
        if failuresInARow > 0 { text += ", left \(failuresInARow) times in a row" }
        if let lastProblem { text += " (last problem: \(lastProblem))" }
        return text
    }
}
