// The functions of this module that are not static inline functions in the
// header: a system call Swift cannot make (syscall(2) is variadic), and the
// CRC-32C instruction, which needs a per-function target attribute so that
// the package needs no compiler flags and still runs on any CPU.
#define _GNU_SOURCE
#include "whycache_support.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
int whycache_crc32c_available(void) {
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
unsigned int whycache_crc32c_advance(unsigned int crc, const void *bytes, unsigned long count) {
    const unsigned char *p = bytes;
    uint64_t register64 = crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        register64 = __builtin_ia32_crc32di(register64, word);
        p += 8;
        count -= 8;
    }
    uint32_t register32 = (uint32_t)register64;
    while (count > 0) {
        register32 = __builtin_ia32_crc32qi(register32, *p);
        p += 1;
        count -= 1;
    }
    return register32;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
int whycache_crc32c_available(void) {
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}

__attribute__((target("crc")))
unsigned int whycache_crc32c_advance(unsigned int crc, const void *bytes, unsigned long count) {
    const unsigned char *p = bytes;
    uint32_t value = crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        value = __builtin_aarch64_crc32cx(value, word);
        p += 8;
        count -= 8;
    }
    while (count > 0) {
        value = __builtin_aarch64_crc32cb(value, *p);
        p += 1;
        count -= 1;
    }
    return value;
}
#else
int whycache_crc32c_available(void) {
    return 0;
}

unsigned int whycache_crc32c_advance(unsigned int crc, const void *bytes, unsigned long count) {
    (void)bytes;
    (void)count;
    return crc;
}
#endif

#if defined(__linux__)
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int whycache_exchange_paths(const char *first, const char *second) {
    // Through syscall(2): older C libraries do not declare renameat2.
    return (int)syscall(SYS_renameat2, AT_FDCWD, first, AT_FDCWD, second, RENAME_EXCHANGE);
}
#elif defined(__APPLE__)
#include <stdio.h>
int whycache_exchange_paths(const char *first, const char *second) {
    return renamex_np(first, second, RENAME_SWAP);
}
#else
#include <errno.h>
int whycache_exchange_paths(const char *first, const char *second) {
    (void)first;
    (void)second;
    errno = ENOSYS;
    return -1;
}
#endif
