import Glibc

/// Where the calling thread starts probing a table of `count` slots (a power
/// of two): a multiplicative hash of its thread id, so that concurrent
/// threads start at different slots and rarely touch each other's cache lines.
@inline(__always)
package func threadSpreadStart(count: Int) -> Int {
    let thread = UInt64(UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))))
    return Int(truncatingIfNeeded: (thread &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - count.trailingZeroBitCount))
}
