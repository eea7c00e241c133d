// The one function of this module that is not a static inline function in
// the header: a system call Swift cannot make (syscall(2) is variadic).
#define _GNU_SOURCE
#include "whycache_support.h"

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
