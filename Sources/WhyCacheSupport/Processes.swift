import Glibc

/// Processes of this machine, by id: the owners of reader slots and of
/// temporary files, which the library reclaims once their owner is gone.
package enum Processes {
    /// The id of this process.
    package static var currentID: Int32 { getpid() }

    /// Whether no process with id `pid` exists: its reader slots and
    /// temporary files can be reclaimed. A process this one may not signal
    /// (`EPERM`) exists.
    package static func isGone(_ pid: Int32) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH
    }
}
