// Everything in this module is a static inline function in the header; this
// file exists because SwiftPM requires at least one source file per C target.
#include "whycache_support.h"
