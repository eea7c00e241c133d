// The system zlib (Debian: zlib1g-dev), for the gzip compression of snapshots.
#include <zlib.h>

// deflateInit2 and inflateInit2 are macros, which Swift cannot call. These
// wrappers select the gzip wrapper (windowBits 15 + 16 = 31, RFC 1952), so
// that compressed snapshots are ordinary .gz streams; inflating with
// windowBits 31 accepts only that wrapper.
static inline int whycache_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
}

static inline int whycache_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 31);
}
