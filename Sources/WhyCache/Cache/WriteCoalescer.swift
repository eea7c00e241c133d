import Synchronization

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
/// **Invariants** (kept under `state`'s lock):
/// - at most one caller leads: `leading` is true from the moment a caller
///   takes the lead until the last leader finds nobody waiting;
/// - `waiters` is empty whenever `leading` is false: a caller that finds no
///   leader leads at once, so no write waits without someone to flush it;
/// - `waiters` is in arrival order, and each append takes a prefix of it
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

    private struct State: ~Copyable {
        var leading = false
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())

    /// The encoded operation bytes one append gathers at most: the leader's
    /// own write always, then waiting writes while they stay within it.
    let maximumAppendBytes: Int

    /// Creates a coalescer whose appends gather up to `maximumAppendBytes`
    /// bytes of operations (a single larger write still goes alone).
    init(maximumAppendBytes: Int) {
        self.maximumAppendBytes = maximumAppendBytes
    }

    /// The writes waiting for the next append.
    var waitingWrites: Int {
        state.withLock { $0.waiters.count }
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
        let leads = state.withLock { state -> Bool in
            guard !state.leading else { return false }
            state.leading = true
            return true
        }
        if leads { return .lead }
        return await withCheckedContinuation { continuation in
            // The leader may have handed over and gone between the two locks.
            let leadsNow = state.withLock { state -> Bool in
                guard state.leading else {
                    state.leading = true
                    return true
                }
                state.waiters.append(Waiter(write: write, continuation: continuation))
                return false
            }
            if leadsNow { continuation.resume(returning: .lead) }
        }
    }

    /// Runs one flush as the leader: gathers the waiting writes behind
    /// `own`, flushes them (the lead passes on as soon as the append is
    /// over, so the next append gathers while this one is applied), and
    /// resumes the gathered callers with their outcomes.
    private func lead(with own: Write, flush: Flush) async -> Result<UInt64, CacheError> {
        let followers = takeFollowers(behind: own)
        var handedOver = false
        let outcomes = await flush([own] + followers.map(\.write)) {
            if !handedOver { handOver() }
            handedOver = true
        }
        if !handedOver { handOver() }
        // The flush reports one outcome per write; should it not, the writes
        // without one fail rather than wait forever.
        func outcome(_ position: Int) -> Result<UInt64, CacheError> {
            guard position < outcomes.count else {
                return .failure(.datastore(.invalidRequest(
                    reason: "a flush of \(followers.count + 1) writes reported \(outcomes.count) outcomes")))
            }
            return outcomes[position]
        }
        for (index, follower) in followers.enumerated() {
            follower.continuation.resume(returning: .finished(outcome(index + 1)))
        }
        return outcome(0)
    }

    /// Removes the longest prefix of the waiting writes that stays, with
    /// `own`, within ``maximumAppendBytes``.
    private func takeFollowers(behind own: Write) -> [Waiter] {
        state.withLock { state -> [Waiter] in
            var bytes = own.bodySize
            var count = 0
            for waiter in state.waiters {
                guard bytes + waiter.write.bodySize <= maximumAppendBytes else { break }
                bytes += waiter.write.bodySize
                count += 1
            }
            defer { state.waiters.removeFirst(count) }
            return Array(state.waiters.prefix(count))
        }
    }

    /// Passes the lead to the first waiting caller, or gives it up when
    /// nobody waits.
    private func handOver() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiters.isEmpty else {
                state.leading = false
                return nil
            }
            return state.waiters.removeFirst()  // `leading` stays true: the lead passes to it
        }
        next?.continuation.resume(returning: .lead)
    }
}
