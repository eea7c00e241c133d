import Dispatch

/// Runs blocking system calls on a Dispatch queue instead of Swift's
/// cooperative thread pool.
///
/// The cooperative pool has one thread per core; a task blocked in `pread`,
/// `fdatasync` or `flock` would take a core away from every other task.
/// Dispatch queues run on their own threads, which may block freely, and the
/// awaiting task is suspended (not blocked) until the work finishes.
///
/// A serial queue (the default) gets its own thread whenever it has work,
/// however busy the shared pool is, so work that may wait a long time (for a
/// lock held by another process) belongs on a serial queue of its own.
package struct BlockingIOQueue: Sendable {
    /// The queue the work runs on.
    package let queue: DispatchQueue

    /// Creates a queue with `label`, serial unless `concurrent`.
    package init(label: String, concurrent: Bool) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: concurrent ? [.concurrent] : [])
    }

    /// Runs `work` on the queue and returns its result.
    package func run<T: Sendable, Failure: Error>(
        _ work: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Failure>, Never>) in
            queue.async {
                continuation.resume(returning: Result { () throws(Failure) -> T in try work() })
            }
        }
        return try result.get()
    }
}
