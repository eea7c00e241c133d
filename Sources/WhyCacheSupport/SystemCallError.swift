import Glibc

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

    /// The system's words for `errno` `code` ("No such file or directory"),
    /// for the error messages of every layer.
    package static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// The same failure, reported on `path`: for a caller that worked on a
    /// temporary file in place of the one it was asked for.
    package func naming(_ path: String) -> SystemCallError {
        var renamed = self
        renamed.path = path
        return renamed
    }
}

/// An error type that can report a failed system call: what a
/// ``FileDescriptor`` of a layer throws.
package protocol SystemCallFailure: Error {
    /// The error reporting `failure`.
    init(systemCall failure: SystemCallError)
}

extension SystemCallError: SystemCallFailure {
    /// `failure` itself: for callers that keep the neutral error (they only
    /// log it or ignore it).
    package init(systemCall failure: SystemCallError) {
        self = failure
    }
}
