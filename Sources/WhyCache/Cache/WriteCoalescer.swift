/// Gathers the writes that the tasks of one process make on one
/// ``SharedCache`` at the same time into shared appends (see
/// ``SharedCache/Configuration/coalescesWrites``).
///
/// A caller hands in its validated write and is suspended (never blocked).
/// One caller at a time *leads*: it takes its own write and the writes
/// waiting behind it (in arrival order, up to a byte bound), has them packed
/// into records and appended in one call, and then hands the lead to the
/// first caller still waiting, whose write and every write that arrived
/// meanwhile make up the next append. While an append is in flight the next
/// one gathers: the busier the cache, the larger the appends, with no timer.
///
/// After handing over, the leader brings the local state to the highest id
/// of its append, once for all of its callers, and only then resumes them:
/// each gets the id of the record that holds its last operation, or every
/// caller of the append gets the same error.
///
/// **Gathering.** The callers of an append come back with their next writes
/// only after the leader applied it, by which time the next append would
/// have left with the writes that arrived meanwhile; concurrent writers would
/// settle into two cohorts taking turns. So a new leader whose predecessor
/// appended for several callers first waits until the others of those
/// callers have handed in their next writes, and goes the moment they have;
/// or until `gatherWait`, or as long as that append took, has passed since
/// its callers were told their outcomes (the time the leader spends applying
/// the append is not theirs to come back in). When nobody waited as that
/// append ended, the first of its callers to come back leads and gathers the
/// rest.
///
/// **Invariants** (kept under `state`'s lock):
/// - at most one caller leads: the lead is a ``HandOffTurn``, held from the
///   moment a caller takes it until the last leader finds nobody waiting;
/// - nobody waits while nobody leads (the turn's own invariant): a caller
///   that finds no leader leads at once, so no write waits without someone
///   to flush it;
/// - `gathering` is set only while the leader waits to gather, and whoever
///   clears it resumes its continuation, exactly once: a caller whose write
///   reaches the target, or the timer;
/// - the turn's waiters are in arrival order, and each append takes a prefix of them
///   behind the leader's own write, which arrived before every waiter.
///   Appends run one at a time, so writes get ids in the order in which they
///   were handed in; a caller hands in its next write only after the last
///   one returned, so each caller's writes keep its order in the log.
final class WriteCoalescer: Sendable {
    /// A caller's operations, checked and ready to be packed.
    typealias Write = LogRecordSplitter.ValidatedWrite

    /// How a waiting caller is resumed.
    private enum Turn: Sendable {
        /// Another caller appended and applied this caller's write.
        case finished(Result<UInt64, CacheError>)
        /// This caller leads the next append.
        case lead
    }

    /// A caller waiting for an append.
    private struct Waiter: Sendable {
        let write: Write
        let continuation: CheckedContinuation<Turn, Never>
    }

    /// A leader waiting for the callers of the previous append.
    private struct Gathering: Sendable {
        /// The number of waiting writes that ends the wait.
        let target: Int
        /// Tells the gathering leader apart from earlier ones (for its timer).
        let round: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    /// The append the last leader made, as the next leader sees it.
    private struct PreviousAppend: Sendable {
        /// Tells this append apart from later ones (for its leader, which
        /// sets `released` after handing over).
        var number: UInt64
        /// Its callers: the leader and the writes it gathered.
        var callers: Int
        /// From the start of its flush until the append was over.
        var duration: Duration
        /// When its callers were told their outcomes; nil until then.
        var released: ContinuousClock.Instant?
    }

    private struct State: ~Copyable {
        /// The lead, and the callers waiting behind it.
        var lead = HandOffTurn<Waiter>()
        var previous: PreviousAppend?
        var gathering: Gathering?
        var rounds: UInt64 = 0
        var appends: UInt64 = 0
    }

    private let state = Locked(State())

    /// The longest a new leader waits for the callers of the previous append.
    let gatherWait: Duration

    /// The encoded operation bytes one append gathers at most: the leader's
    /// own write always, then waiting writes while they stay within it.
    let maximumAppendBytes: Int

    /// Creates a coalescer whose appends gather up to `maximumAppendBytes`
    /// bytes of operations (a single larger write still goes alone).
    /// A new leader waits up to `gatherWait` for the callers of the previous
    /// append (zero: never).
    init(maximumAppendBytes: Int, gatherWait: Duration = .zero) {
        self.maximumAppendBytes = maximumAppendBytes
        self.gatherWait = gatherWait
    }

    /// The writes waiting for the next append.
    var waitingWrites: Int {
        state.withLock { $0.lead.waiters.count }
    }

    /// What the leader runs for one append: `flush(writes, appended)`
    /// appends `writes` in one call, calls `appended` once as soon as the
    /// append is over (succeeded or not), makes the local state apply it,
    /// and returns one outcome per write, in order.
    typealias Flush = (_ writes: [Write], _ appended: () -> Void) async -> [Result<UInt64, CacheError>]

    /// Appends `write` together with the writes of other callers (with
    /// `flush`, when this caller leads) and returns the outcome that the
    /// leader's flush reported for it: the update id of the record holding
    /// its last operation, or the error.
    func write(_ write: Write, flush: Flush) async throws(CacheError) -> UInt64 {
        switch await turn(for: write) {
        case .finished(let result):
            return try result.get()
        case .lead:
            return try await lead(with: write, flush: flush).get()
        }
    }

    /// Takes the lead at once when nobody has it; otherwise waits to be
    /// resumed, either with the outcome of the write or with the lead.
    private func turn(for write: Write) async -> Turn {
        if state.withLock({ $0.lead.take() }) { return .lead }
        return await withCheckedContinuation { continuation in
            // The leader may have handed over and gone between the two locks.
            let (leadsNow, gathered) = state.withLock { state -> (Bool, Gathering?) in
                if state.lead.takeOrWait(Waiter(write: write, continuation: continuation)) { return (true, nil) }
                guard let gathering = state.gathering, state.lead.waiters.count >= gathering.target else { return (false, nil) }
                state.gathering = nil
                return (false, gathering)
            }
            gathered?.continuation.resume()
            if leadsNow { continuation.resume(returning: .lead) }
        }
    }

    /// Runs one flush as the leader: gathers the waiting writes behind
    /// `own`, flushes them (the lead passes on as soon as the append is
    /// over, so the next append gathers while this one is applied), and
    /// resumes the gathered callers with their outcomes.
    private func lead(with own: Write, flush: Flush) async -> Result<UInt64, CacheError> {
        await gatherCallersOfPreviousAppend()
        let followers = takeFollowers(behind: own)
        let started = ContinuousClock.now
        // The number of this append once the lead has passed on (once).
        var number: UInt64?
        func handOverOnce() {
            if number == nil { number = handOver(after: followers.count + 1, took: started.duration(to: .now)) }
        }
        let outcomes = await flush([own] + followers.map(\.write), handOverOnce)
        handOverOnce()
        // The flush reports one outcome per write; should it not, the writes
        // without one fail rather than wait forever.
        func outcome(_ position: Int) -> Result<UInt64, CacheError> {
            guard position < outcomes.count else {
                return .failure(.internalInconsistency(
                    reason: "a flush of \(followers.count + 1) writes reported \(outcomes.count) outcomes"))
            }
            return outcomes[position]
        }
        for (index, follower) in followers.enumerated() {
            follower.continuation.resume(returning: .finished(outcome(index + 1)))
        }
        state.withLock { state in
            if state.previous?.number == number { state.previous?.released = .now }
        }
        return outcome(0)
    }

    /// Removes the longest prefix of the waiting writes that stays, with
    /// `own`, within ``maximumAppendBytes``.
    private func takeFollowers(behind own: Write) -> [Waiter] {
        state.withLock { state -> [Waiter] in
            var bytes = own.bodySize
            var count = 0
            for waiter in state.lead.waiters {
                guard bytes + waiter.write.bodySize <= maximumAppendBytes else { break }
                bytes += waiter.write.bodySize
                count += 1
            }
            return state.lead.removeFirstWaiters(count)
        }
    }

    /// Passes the lead to the first waiting caller, or gives it up when
    /// nobody waits, telling the next leader about the append just over (of
    /// `callers` writes, which took `duration`). Returns that append's number.
    private func handOver(after callers: Int, took duration: Duration) -> UInt64 {
        let (next, number) = state.withLock { state -> (Waiter?, UInt64) in
            state.appends &+= 1
            state.previous = PreviousAppend(number: state.appends, callers: callers, duration: duration, released: nil)
            // With nobody waiting, the lead is free: the first of its
            // callers to come back leads, and gathers the others.
            return (state.lead.passOn(), state.appends)
        }
        next?.continuation.resume(returning: .lead)
        return number
    }

    /// As the new leader: waits until the callers of the previous append
    /// have handed in their next writes, or until the time allowed is up.
    private func gatherCallersOfPreviousAppend() async {
        guard gatherWait > .zero else { return }
        // Decided before any suspension, so that a leader with nobody to
        // gather goes on at once, with the waiting writes it found.
        let plan = state.withLock { state -> (target: Int, round: UInt64, limit: Duration)? in
            guard let previous = state.previous, previous.callers > 1 else { return nil }
            state.previous = nil
            // The time allowed counts from when the previous append's
            // callers were told their outcomes (in full while they are
            // still being told); a leader that comes later gathers nothing.
            let limit = min(gatherWait, previous.duration) - (previous.released?.duration(to: .now) ?? .zero)
            guard limit > .zero else { return nil }
            state.rounds &+= 1
            // This leader may be one of those callers: wait for the others.
            return (state.lead.waiters.count + previous.callers - 1, state.rounds, limit)
        }
        guard let plan else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = state.withLock { state -> Bool in
                // They may all be back already.
                guard state.lead.waiters.count < plan.target else { return false }
                state.gathering = Gathering(target: plan.target, round: plan.round, continuation: continuation)
                return true
            }
            guard waits else {
                continuation.resume()
                return
            }
            Task {
                try? await Task.sleep(for: plan.limit)
                let gathering = self.state.withLock { state -> Gathering? in
                    guard let gathering = state.gathering, gathering.round == plan.round else { return nil }
                    state.gathering = nil
                    return gathering
                }
                gathering?.continuation.resume()
            }
        }
    }
}
