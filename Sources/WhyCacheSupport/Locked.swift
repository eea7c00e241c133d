import CWhyCacheSupport
import Synchronization

/// A value that threads share under a lock: `Mutex` (Synchronization), plus
/// what lets ThreadSanitizer see it.
///
/// On Linux, `Mutex` waits and wakes through `futex` calls made inside the
/// standard library, which ThreadSanitizer neither instruments nor
/// intercepts: it would see no order between two threads' turns under one
/// lock and report every guarded access as a race. In a build for
/// scripts/sanitize.sh thread (`WHYCACHE_THREAD_SANITIZER` defined, see
/// Package.swift) each turn therefore tells it so — an acquire at this
/// object's address when the turn starts, a release when it ends — which
/// is exactly the order the lock gives. (A class, so that the lock has an
/// address that names it without touching the guarded value.) Other builds
/// compile to the `Mutex` alone.
///
/// Every lock of the package's own code is one of these, so that the
/// sanitizer runs see every lock.
package final class Locked<Value: ~Copyable>: Sendable {
    private let mutex: Mutex<Value>

    /// A lock guarding `value`.
    package init(_ value: consuming sending Value) {
        mutex = Mutex(value)
    }

    /// Calls `body` with the guarded value while holding the lock.
    @inline(__always)
    package func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        #if WHYCACHE_THREAD_SANITIZER
        let identity = Unmanaged.passUnretained(self).toOpaque()
        #endif
        return try mutex.withLock { (value) throws(Failure) -> sending Result in
            #if WHYCACHE_THREAD_SANITIZER
            __tsan_acquire(identity)
            defer { __tsan_release(identity) }
            #endif
            return try body(&value)
        }
    }
}
