/// Lets one ``SharedCache/update(through:)`` of a cache run at a time in this
/// process, and tells a waiting caller whether the work it wanted was done
/// while it waited.
///
/// Waiting callers are suspended (never blocked) and resumed in arrival
/// order. Only the caller that holds the gate waits for the state file's
/// cross-process writer lock, so at most one thread per cache ever blocks on
/// that lock however many tasks call `update()` at once.
final class UpdateGate: Sendable {
    /// What a caller learns when it enters the gate.
    struct Ticket: Sendable {
        /// The local update id reached by the last run that started after
        /// this caller arrived and succeeded, if any: a caller that wanted
        /// "everything the log holds now" needs no run of its own then.
        let reachedByLaterRun: UInt64?
    }

    private struct State: ~Copyable {
        /// The gate: held by the caller inside, passed to the waiting ones in arrival order.
        var turn = HandOffTurn<CheckedContinuation<Void, Never>>()
        /// Counts the runs that started.
        var runsStarted: UInt64 = 0
        /// The start number and outcome of the last successful run.
        var lastSuccess: (run: UInt64, updateID: UInt64)?
    }

    private let state = Locked(State())

    /// Waits for the gate and enters it. Every `enter()` must be followed by
    /// exactly one ``leave(reached:)``.
    func enter() async -> Ticket {
        let (arrival, entered) = state.withLock { state in (state.runsStarted, state.turn.take()) }
        if !entered {
            await withCheckedContinuation { continuation in
                // The holder may have left between the two looks.
                if state.withLock({ $0.turn.takeOrWait(continuation) }) { continuation.resume() }
            }
        }
        return state.withLock { state in
            state.runsStarted += 1
            if let success = state.lastSuccess, success.run > arrival {
                return Ticket(reachedByLaterRun: success.updateID)
            }
            return Ticket(reachedByLaterRun: nil)
        }
    }

    /// Leaves the gate, recording the update id the run reached (nil when it
    /// failed), and lets the next waiter in.
    func leave(reached updateID: UInt64?) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let updateID { state.lastSuccess = (state.runsStarted, updateID) }
            return state.turn.passOn()
        }
        next?.resume()
    }
}
