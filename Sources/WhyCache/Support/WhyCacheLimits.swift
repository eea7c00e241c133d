/// The size limits on keys and values, shared by every layer (the shared-state
/// file, the log record format and the cache API), so that anything one layer
/// accepts, every other layer accepts too.
public enum WhyCacheLimits {
    /// The shortest key: keys are non-empty byte strings.
    public static let minimumKeyLength = 1

    /// The longest key, in bytes (1 KiB). Longer keys are rejected with a typed
    /// error before anything is written.
    public static let maximumKeyLength = 1024

    /// The longest value, in bytes (64 MiB). Values may be empty.
    public static let maximumValueLength = 64 << 20
}
