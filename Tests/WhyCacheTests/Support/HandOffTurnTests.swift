import Testing
@testable import WhyCache

/// The first-come hand-off behind the update gate and the write coalescer,
/// driven directly: who holds the turn, who waits, in which order it passes
/// on, and the waiters a holder serves itself.
@Suite struct HandOffTurnTests {
    @Test func aFreeTurnIsTakenAtOnceAndAHeldOneIsNot() {
        var turn = HandOffTurn<Int>()
        #expect(!turn.isHeld)
        let first = turn.take()
        let second = turn.take()
        #expect(first && !second)
        #expect(turn.isHeld)
        #expect(turn.waiters.isEmpty, "take() never queues")
    }

    /// Waiters queue in arrival order while the turn is held, and the turn
    /// passes to them one by one in that order without ever being free in
    /// between; the last holder frees it.
    @Test func theTurnPassesInArrivalOrderAndStaysHeldUntilNobodyWaits() {
        var turn = HandOffTurn<Int>()
        let tookFreeTurn = turn.takeOrWait(0)
        #expect(tookFreeTurn, "a free turn is taken, not waited for")
        #expect(turn.waiters.isEmpty)
        let queued = (1...3).map { turn.takeOrWait($0) }
        #expect(queued == [false, false, false])
        #expect(turn.waiters == [1, 2, 3])
        var order: [Int] = []
        while let next = turn.passOn() {
            order.append(next)
            #expect(turn.isHeld, "held by \(next) now")
            let newcomer = turn.take()
            #expect(!newcomer, "no newcomer gets in while the turn passes on")
        }
        #expect(order == [1, 2, 3])
        #expect(!turn.isHeld)
        #expect(turn.waiters.isEmpty)
        let again = turn.take()
        #expect(again, "free again")
    }

    /// A holder that serves the first waiters itself removes them; the turn
    /// then passes to the first one left, and a count beyond the waiters
    /// takes them all.
    @Test func theHolderServesAPrefixOfTheWaitersItself() {
        var turn = HandOffTurn<String>()
        _ = turn.take()
        for waiter in ["a", "b", "c", "d"] { _ = turn.takeOrWait(waiter) }
        #expect(turn.waiters == ["a", "b", "c", "d"])
        let served = turn.removeFirstWaiters(2)
        let next = turn.passOn()
        let rest = turn.removeFirstWaiters(5)
        let none = turn.removeFirstWaiters(1)
        #expect(served == ["a", "b"] && next == "c" && rest == ["d"] && none.isEmpty)
        #expect(turn.isHeld, "serving waiters does not give the turn up")
        let last = turn.passOn()
        #expect(last == nil)
        #expect(!turn.isHeld)
    }
}
