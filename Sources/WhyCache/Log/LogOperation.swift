/// One change to the key-value dataset, as stored in a log record.
public enum LogOperation: Sendable, Hashable {
    /// Gives `key` the value `value`, replacing any previous value.
    case set(key: [UInt8], value: [UInt8])

    /// Removes `key` (and its value) if it exists.
    case delete(key: [UInt8])

    /// Whether this operation sets or deletes its key.
    @inlinable
    public var kind: LogOperationKind {
        switch self {
        case .set: .set
        case .delete: .delete
        }
    }

    /// The key this operation changes.
    @inlinable
    public var key: [UInt8] {
        switch self {
        case .set(let key, _): key
        case .delete(let key): key
        }
    }

    /// The new value of a `.set`, or `nil` for a `.delete`.
    @inlinable
    public var value: [UInt8]? {
        switch self {
        case .set(_, let value): value
        case .delete: nil
        }
    }
}
