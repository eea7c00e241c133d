/// A sleep that other tasks can cut short, without lost wake-ups: a sleeper
/// notes the ``generation`` before it looks at what it waits for, and
/// ``sleep(for:unlessRungSince:)`` returns at once if ``ring()`` was called
/// since. Any number of tasks may sleep; a ring wakes them all.
///
/// Used by ``BackgroundUpdater`` (a round asked for) and by change streams
/// (the local state moved).
package final class Doorbell: Sendable {
    private struct State {
        package var generation: UInt64 = 0
        package var sleepers: [Int: CheckedContinuation<Void, Never>] = [:]
        package var nextSleeper = 0
    }

    private let state = Locked(State())

    package init() {}

    /// The number of rings so far.
    package var generation: UInt64 {
        state.withLock { $0.generation }
    }

    /// Wakes every sleeper, and every sleep that starts with an older generation.
    package func ring() {
        let sleepers = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.sleepers.removeAll() }
            return Array(state.sleepers.values)
        }
        for sleeper in sleepers { sleeper.resume() }
    }

    /// Sleeps for `duration`, or until a ring after `generation`, or until
    /// the task is cancelled — whichever comes first.
    package func sleep(for duration: Duration, unlessRungSince generation: UInt64) async {
        let number = state.withLock { state -> Int in
            defer { state.nextSleeper += 1 }
            return state.nextSleeper
        }
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: duration) } catch { return }  // cancelled: woken sooner
            self?.wake(number)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.generation != generation || Task.isCancelled { return true }
                    state.sleepers[number] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(number)
        }
        timer.cancel()
    }

    /// Wakes the sleeper `number`, if it still sleeps.
    private func wake(_ number: Int) {
        state.withLock { $0.sleepers.removeValue(forKey: number) }?.resume()
    }
}
