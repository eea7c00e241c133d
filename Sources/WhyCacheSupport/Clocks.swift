import Glibc

/// The two clocks of the library, in nanoseconds.
package enum Clocks {
    /// Nanoseconds of the monotonic clock (`CLOCK_MONOTONIC`): for durations
    /// and rate limits within this boot of this machine.
    package static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Wall-clock nanoseconds since 1970 (`CLOCK_REALTIME`): for times that
    /// other processes and machines compare (commit timestamps, lag).
    package static func wallClockNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}
