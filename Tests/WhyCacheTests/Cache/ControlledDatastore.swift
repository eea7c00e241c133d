import Synchronization
import WhyCache

/// A real datastore (a ``FileDatastore``, a ``MySQLDatastore``…) whose
/// appends and reads a test can hold or fail on demand; everything else, and
/// every append and read it lets through, goes to the wrapped store.
final class ControlledDatastore: Datastore {
    let wrapped: any Datastore

    private struct State {
        /// Whether the next append waits in ``releaseHeldAppend()``.
        var holdsNextAppend = false
        var heldAppend: CheckedContinuation<Void, Never>?
        var waitingForHold: [CheckedContinuation<Void, Never>] = []
        /// The errors the next appends throw, in order, without appending.
        var appendFailures: [DatastoreError] = []
        /// The error every read of records throws while set.
        var readFailure: DatastoreError?
        /// Whether the next append returns one id fewer than it appended.
        var dropsAnIDOfNextAppend = false
    }

    private let state = Mutex(State())

    init(wrapping wrapped: any Datastore) {
        self.wrapped = wrapped
    }

    /// Makes the next append wait, once it arrives, until ``releaseHeldAppend()``.
    func holdNextAppend() {
        state.withLock { $0.holdsNextAppend = true }
    }

    /// Returns once an append is held.
    func waitUntilAnAppendIsHeld() async {
        await withCheckedContinuation { continuation in
            let held = state.withLock { state -> Bool in
                guard state.heldAppend == nil else { return true }
                state.waitingForHold.append(continuation)
                return false
            }
            if held { continuation.resume() }
        }
    }

    /// Lets the held append go on to the wrapped store.
    func releaseHeldAppend() {
        let held = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.heldAppend = nil }
            return state.heldAppend
        }
        held?.resume()
    }

    /// Makes the next append that arrives throw `error` without appending.
    func failNextAppend(with error: DatastoreError) {
        state.withLock { $0.appendFailures.append(error) }
    }

    /// Makes the next append go through to the wrapped store but return
    /// one id fewer than it appended: a datastore that breaks the
    /// ``Datastore`` protocol's contract.
    func dropAnIDOfNextAppend() {
        state.withLock { $0.dropsAnIDOfNextAppend = true }
    }

    /// Makes every read of records throw `error` (nil: read again).
    func failReads(with error: DatastoreError?) {
        state.withLock { $0.readFailure = error }
    }

    func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        enum Entry { case fail(DatastoreError), hold, pass }
        let entry = state.withLock { state -> Entry in
            if !state.appendFailures.isEmpty { return .fail(state.appendFailures.removeFirst()) }
            guard state.holdsNextAppend else { return .pass }
            state.holdsNextAppend = false
            return .hold
        }
        switch entry {
        case .fail(let error):
            throw error
        case .hold:
            await withCheckedContinuation { continuation in
                let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.heldAppend = continuation
                    defer { state.waitingForHold = [] }
                    return state.waitingForHold
                }
                for waiter in waiting { waiter.resume() }
            }
        case .pass:
            break
        }
        let ids = try await wrapped.append(contentsOf: payloads)
        let drops = state.withLock { state in
            defer { state.dropsAnIDOfNextAppend = false }
            return state.dropsAnIDOfNextAppend
        }
        return drops ? Array(ids.dropLast()) : ids
    }

    func readRecords(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> [LogEntry] {
        if let error = state.withLock({ $0.readFailure }) { throw error }
        return try await wrapped.readRecords(after: after, through: through, limits: limits)
    }

    func createIfMissing() async throws(DatastoreError) { try await wrapped.createIfMissing() }
    func latestUpdateID() async throws(DatastoreError) -> UInt64 { try await wrapped.latestUpdateID() }
    func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64 { try await wrapped.firstRetainedUpdateID() }
    func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo? { try await wrapped.latestCheckpoint() }
    func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter {
        try await wrapped.beginCheckpoint(at: updateID)
    }
    func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        try await wrapped.readCheckpoint(checkpoint, from: position, limits: limits)
    }
    func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError) { try await wrapped.removeCheckpoints(before: updateID) }
    func removeRecords(through updateID: UInt64) async throws(DatastoreError) { try await wrapped.removeRecords(through: updateID) }
    func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock {
        try await wrapped.acquireMaintenanceLock()
    }
}
