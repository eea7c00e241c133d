/// A system call that failed: which one, on what path, with what `errno`.
///
/// The neutral error of the system-call layer (``FileDescriptor``). No layer
/// throws it to its callers: each layer's error type turns it into its own
/// case (``SystemCallFailure``), so that a datastore reports an I/O failure
/// as a ``DatastoreError`` and the shared-state file as a ``StateFileError``.
package struct SystemCallError: Error, Hashable {
    /// The system call (`open`, `pread`, `flock`…).
    package var call: String
    /// The file it was made on, as the caller named it.
    package var path: String
    /// The `errno` it failed with (for `posix_fallocate`, its return value).
    package var errno: Int32

    /// The failure of `call` on `path` with `errno`.
    package init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }
}

/// An error type that can report a failed system call: what a
/// ``FileDescriptor`` of a layer throws.
package protocol SystemCallFailure: Error {
    /// The error reporting `failure`.
    init(systemCall failure: SystemCallError)
}
