extension WhyCacheLimits {
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
