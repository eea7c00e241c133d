#ifndef WHYCACHE_SUPPORT_H
#define WHYCACHE_SUPPORT_H

/// Hints the CPU to start loading the cache line at `address` for reading.
/// A prefetch never faults, so any address is allowed.
static inline void whycache_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Whether this CPU has a CRC-32C instruction that
/// `whycache_crc32c_advance` uses (x86-64 SSE 4.2, arm64 CRC32).
int whycache_crc32c_available(void);

/// Advances a running CRC-32C register (reflected, not inverted: the caller
/// does the initial and final inversions) over `count` bytes at `bytes`,
/// with the CPU's CRC-32C instruction. Call only when
/// `whycache_crc32c_available()` returned non-zero; `bytes` must address
/// `count` readable bytes (any alignment).
unsigned int whycache_crc32c_advance(unsigned int crc, const void *bytes, unsigned long count);

/// Atomically exchanges the files at `first` and `second` (both must exist):
/// Linux `renameat2(RENAME_EXCHANGE)`, macOS `renamex_np(RENAME_SWAP)`.
/// Returns 0, or -1 with `errno` set (ENOSYS/EINVAL where unsupported).
int whycache_exchange_paths(const char *first, const char *second);

/// ThreadSanitizer's annotations (its runtime defines them): the calling
/// thread acquires, or releases, the happens-before order kept at `address`.
/// Called only by `Locked` in builds with ThreadSanitizer
/// (`WHYCACHE_THREAD_SANITIZER`), whose runtime is then linked in.
void __tsan_acquire(void *address);
void __tsan_release(void *address);

#endif
