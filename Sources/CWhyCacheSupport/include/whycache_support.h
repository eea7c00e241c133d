#ifndef WHYCACHE_SUPPORT_H
#define WHYCACHE_SUPPORT_H

/// Hints the CPU to start loading the cache line at `address` for reading.
/// A prefetch never faults, so any address is allowed.
static inline void whycache_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Atomically exchanges the files at `first` and `second` (both must exist):
/// Linux `renameat2(RENAME_EXCHANGE)`, macOS `renamex_np(RENAME_SWAP)`.
/// Returns 0, or -1 with `errno` set (ENOSYS/EINVAL where unsupported).
int whycache_exchange_paths(const char *first, const char *second);

#endif
