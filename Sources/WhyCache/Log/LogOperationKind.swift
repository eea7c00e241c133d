/// What a log operation does to its key.
///
/// The raw value is the two-bit kind stored in the record format
/// (see `docs/FORMAT.md`).
public enum LogOperationKind: UInt8, Sendable, Hashable, CaseIterable {
    /// The key is given a value, replacing any previous one.
    case set = 0

    /// The key is removed; deleting a missing key is not an error.
    case delete = 1
}
