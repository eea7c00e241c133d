import Dispatch

/// Runs blocking file I/O on a Dispatch queue instead of Swift's cooperative
/// thread pool.
///
/// The cooperative pool has one thread per core; a task blocked in `pread`,
/// `fdatasync` or `flock` would take a core away from every other task.
/// Dispatch queues run on their own threads, which may block freely, and the
/// awaiting task is suspended (not blocked) until the work finishes.
struct BlockingIOQueue: Sendable {
    /// The queue the work runs on.
    let queue: DispatchQueue

    /// Creates a queue with `label`, serial unless `concurrent`.
    init(label: String, concurrent: Bool) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: concurrent ? [.concurrent] : [])
    }

    /// Runs `work` on the queue and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws(DatastoreError) -> T) async throws(DatastoreError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, DatastoreError>, Never>) in
            queue.async {
                continuation.resume(returning: Result { () throws(DatastoreError) -> T in try work() })
            }
        }
        return try result.get()
    }
}
