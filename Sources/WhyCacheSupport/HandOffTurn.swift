/// A turn that one caller holds at a time and that passes, first come first
/// served, to the callers waiting for it: the state machine behind
/// ``UpdateGate`` (one `update()` at a time) and ``WriteCoalescer`` (one
/// leader at a time).
///
/// It is a value kept inside its owner's locked state, so that the owner
/// changes its own bookkeeping in the same step as the turn; it neither
/// locks nor suspends. A `Waiter` is whatever the owner needs to resume a
/// waiting caller (a continuation, with the caller's work).
///
/// **Invariants.**
/// - Nobody waits while the turn is free: a caller that finds it free takes
///   it (``take()``, ``takeOrWait(_:)``), and ``passOn()`` frees it only
///   when nobody waits.
/// - The turn passes in arrival order: ``passOn()`` hands it to the waiter
///   that queued first, and it stays held in between, so no newcomer can
///   take it on the way.
///
/// The usual entry takes two steps, each under the owner's lock: ``take()``,
/// and when that fails, ``takeOrWait(_:)`` from inside the continuation the
/// caller suspends on — the holder may have passed the turn on and gone
/// between the two, and then the caller holds the turn and resumes itself.
package struct HandOffTurn<Waiter> {
    /// Whether a caller holds the turn.
    package private(set) var isHeld = false

    /// The callers waiting for the turn, in arrival order.
    package private(set) var waiters: [Waiter] = []

    /// A free turn that nobody waits for.
    package init() {}

    /// Takes the turn when it is free. Returns whether this caller now holds it.
    package mutating func take() -> Bool {
        guard !isHeld else { return false }
        isHeld = true
        return true
    }

    /// Takes the turn when it is free; otherwise queues `waiter` behind the
    /// callers already waiting. Returns whether this caller now holds the
    /// turn (then `waiter` was not queued, and its owner resumes it).
    package mutating func takeOrWait(_ waiter: Waiter) -> Bool {
        if take() { return true }
        waiters.append(waiter)
        return false
    }

    /// Called by the holder when it is done: hands the turn to the first
    /// waiter, which is removed and returned (the turn stays held, now by
    /// it), or frees the turn when nobody waits and returns nil.
    package mutating func passOn() -> Waiter? {
        guard !waiters.isEmpty else {
            isHeld = false
            return nil
        }
        return waiters.removeFirst()
    }

    /// Removes and returns the first `count` waiters, whose work the holder
    /// takes on itself (they never get the turn). `count` is at most the
    /// number of waiters.
    package mutating func removeFirstWaiters(_ count: Int) -> [Waiter] {
        let taken = Array(waiters.prefix(count))
        waiters.removeFirst(taken.count)
        return taken
    }
}
