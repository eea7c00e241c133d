import Foundation
import Synchronization

/// Runs the tasks that prefer it on a thread of its own instead of Swift's
/// cooperative thread pool.
///
/// The cooperative pool has one thread per core (two on a 2-core machine),
/// and the test runner runs many tests beside each other: a task resumed by
/// a MySQL append worker may wait seconds for a pool thread while other
/// tests hold both. Dispatch's concurrent queues are no way out: on Linux
/// they share a process-wide pool capped at the number of cores too, which
/// other tests' blocking waits can fill. A test whose assertion depends on
/// how soon a resumed task acts (a worker that waits a bounded time for its
/// callers to come back) runs those tasks here (`Task(executorPreference:)`),
/// so the delay is the operating system's scheduling of one thread only.
///
/// The jobs run one at a time, in the order they were enqueued; a job that
/// blocks holds the others back. The thread lives as long as the process,
/// idle on a condition variable once its jobs are done.
final class ThreadTaskExecutor: TaskExecutor {
    private let jobs = JobQueue()

    /// An executor running jobs on a new thread named `name`.
    init(name: String) {
        let jobs = jobs
        let thread = Thread { [unowned(unsafe) self] in
            while true {
                jobs.next().runSynchronously(on: self.asUnownedTaskExecutor())
            }
        }
        thread.name = name
        // The thread refers to the executor without retaining it: the
        // executor is kept for the process's lifetime (below), so it
        // outlives every job the thread runs.
        Self.keptAlive.withLock { $0.append(self) }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.push(UnownedJob(job))
    }

    /// Every executor made, which the threads running their jobs refer to.
    private static let keptAlive = Mutex<[ThreadTaskExecutor]>([])

    /// The jobs enqueued and not yet run, under a condition variable.
    private final class JobQueue: @unchecked Sendable {
        // `condition` guards `pending`.
        private let condition = NSCondition()
        private var pending: [UnownedJob] = []

        func push(_ job: UnownedJob) {
            condition.lock()
            pending.append(job)
            condition.signal()
            condition.unlock()
        }

        /// The oldest job, waiting for one when there is none.
        func next() -> UnownedJob {
            condition.lock()
            defer { condition.unlock() }
            while pending.isEmpty { condition.wait() }
            return pending.removeFirst()
        }
    }
}
