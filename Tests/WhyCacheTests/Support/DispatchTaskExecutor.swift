import Dispatch

/// Runs the tasks that prefer it on a concurrent Dispatch queue instead of
/// Swift's cooperative thread pool.
///
/// The cooperative pool has one thread per core (two on a 2-core machine),
/// and the test runner runs many tests beside each other: a task resumed by
/// a MySQL append worker may wait seconds for a pool thread while other
/// tests hold both. A test whose assertion depends on how soon a resumed task
/// acts (a worker that waits a bounded time for its callers to come back)
/// runs those tasks here (`Task(executorPreference:)`), where Dispatch starts
/// threads as they are needed, so the delay is the operating system's
/// scheduling only.
final class DispatchTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    /// An executor running jobs on a concurrent queue labelled `label`.
    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: .concurrent)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
