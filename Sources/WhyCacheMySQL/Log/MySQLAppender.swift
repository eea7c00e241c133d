import Synchronization
import WhyCache

/// Appends records for one process: groups the appends that wait at the same
/// time into one transaction (group commit), with up to
/// ``MySQLConfiguration/maximumConcurrentAppends`` transactions in flight on
/// different pooled connections.
///
/// Appends of all processes are ordered by the counter row lock
/// (``MySQLLogTable/append(_:on:)``); grouping lets many concurrent `set`
/// calls share one lock hold, one commit and one disk flush on the server,
/// and a second transaction in flight queues for the lock while the first
/// one commits, so that no round trip is wasted between them.
final class MySQLAppender: Sendable {
    private let pool: MySQLConnectionPool
    private let log: MySQLLogTable
    private let maximumWorkers: Int
    private let state = Mutex(State())

    /// The most records one transaction takes from the queue.
    private static let recordsPerTransaction = 4_096

    /// The payload bytes after which a transaction takes no more appends.
    private static let bytesPerTransaction = 8 << 20

    private struct State: ~Copyable {
        var queue: [PendingAppend] = []
        var workers = 0
    }

    private struct PendingAppend: Sendable {
        var payloads: [[UInt8]]
        var continuation: CheckedContinuation<Result<[UInt64], DatastoreError>, Never>
    }

    init(pool: MySQLConnectionPool, log: MySQLLogTable, maximumWorkers: Int) {
        self.pool = pool
        self.log = log
        self.maximumWorkers = maximumWorkers
    }

    /// Appends `payloads` as consecutive records and returns their ids.
    func append(_ payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt64], DatastoreError>, Never>) in
            let startsWorker = state.withLock { state -> Bool in
                state.queue.append(PendingAppend(payloads: payloads, continuation: continuation))
                guard state.workers < maximumWorkers else { return false }
                state.workers += 1
                return true
            }
            if startsWorker {
                Task { await self.work() }
            }
        }
        return try result.get()
    }

    /// Commits batches from the queue until it is empty.
    private func work() async {
        while let batch = nextBatch() {
            let result = await commit(batch.flatMap(\.payloads))
            var start = 0
            for append in batch {
                let count = append.payloads.count
                append.continuation.resume(returning: result.map { Array($0[start..<start + count]) })
                start += count
            }
        }
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

    /// Runs one append transaction. A transaction that failed before its
    /// commit was sent changed nothing and is retried on a fresh connection
    /// when the pooled one had gone stale; a failed commit is never retried.
    private func commit(_ payloads: [[UInt8]]) async -> Result<[UInt64], DatastoreError> {
        let log = log
        do throws(MySQLPoolError<MySQLTransactionError>) {
            return .success(try await pool.runTransaction(retryingBeforeCommit: true) { connection throws(MySQLWorkError) in
                try log.append(payloads, on: connection)
            })
        } catch {
            if case .work(.commitFailed(let cause)) = error, cause.breaksConnection {
                return .failure(.appendOutcomeUnknown(reason: "\(log.location): \(cause.message) (MySQL error \(cause.code))"))
            }
            return .failure(error.datastoreError(operation: "append", location: log.location))
        }
    }
}
