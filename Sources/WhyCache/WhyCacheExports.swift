// The public types of the layers below the cache (keys and limits, the state file's
// snapshots, statistics and errors) are part of this module's API: a user imports
// WhyCache alone.
@_exported import WhyCacheState
@_exported import WhyCacheSupport
