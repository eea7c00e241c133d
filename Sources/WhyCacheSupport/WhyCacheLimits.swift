/// The size limits on keys, values and log records, shared by every layer (the shared-state
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

    /// The size a writer gives an encoded log record at most unless configured
    /// otherwise (1 MiB). Multi-key writes are split into records of this size.
    public static let defaultMaximumRecordSize = 1 << 20

    /// The largest encoded log record that may exist (128 MiB).
    ///
    /// It is large enough for a record holding one key of the maximum length
    /// with a value of the maximum length. Writers may not be configured with a
    /// larger record size, and every datastore accepts payloads up to this size.
    public static let maximumRecordSize = 128 << 20
}
