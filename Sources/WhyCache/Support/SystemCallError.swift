/// A system call that failed: which one, on what path, with what `errno`.
///
/// The neutral error of the system-call layer (``FileDescriptor``). No layer
/// throws it to its callers: each layer's error type turns it into its own
/// case (``SystemCallFailure``), so that a datastore reports an I/O failure
/// as a ``DatastoreError`` and the shared-state file as a ``StateFileError``.
struct SystemCallError: Error, Hashable {
    /// The system call (`open`, `pread`, `flock`…).
    var call: String
    /// The file it was made on, as the caller named it.
    var path: String
    /// The `errno` it failed with (for `posix_fallocate`, its return value).
    var errno: Int32
}

/// An error type that can report a failed system call: what a
/// ``FileDescriptor`` of a layer throws.
protocol SystemCallFailure: Error {
    /// The error reporting `failure`.
    init(systemCall failure: SystemCallError)
}
