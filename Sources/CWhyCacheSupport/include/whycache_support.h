#ifndef WHYCACHE_SUPPORT_H
#define WHYCACHE_SUPPORT_H

/// Hints the CPU to start loading the cache line at `address` for reading.
/// A prefetch never faults, so any address is allowed.
static inline void whycache_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
