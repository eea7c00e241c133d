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

    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Counts the runs that started.
        var runsStarted: UInt64 = 0
        /// The start number and outcome of the last successful run.
        var lastSuccess: (run: UInt64, updateID: UInt64)?
    }

    private let state = Locked(State())

    /// Waits for the gate and enters it. Every `enter()` must be followed by
    /// exactly one ``leave(reached:)``.
    func enter() async -> Ticket {
        let (arrival, entered) = state.withLock { state -> (UInt64, Bool) in
            guard !state.busy else { return (state.runsStarted, false) }
            state.busy = true
            return (state.runsStarted, true)
        }
        if !entered {
            await withCheckedContinuation { continuation in
                let enteredNow = state.withLock { state -> Bool in
                    guard state.busy else {
                        state.busy = true
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if enteredNow { continuation.resume() }
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
            guard !state.waiters.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()  // the gate passes to it, still busy
        }
        next?.resume()
    }
}
