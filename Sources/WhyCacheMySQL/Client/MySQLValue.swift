/// A value sent to or read from a prepared statement.
///
/// The datastore only needs unsigned integers and byte strings: ids, sizes
/// and checksums are `BIGINT UNSIGNED` / `INT UNSIGNED`, payloads and keys are
/// BLOBs, and lock names are sent as bytes of ASCII text.
enum MySQLValue: Sendable, Hashable {
    /// SQL `NULL`.
    case null

    /// An unsigned integer column or parameter.
    case unsigned(UInt64)

    /// A binary string (`VARBINARY`, `BLOB`) column or parameter.
    case bytes([UInt8])

    /// The integer, or `nil` for `NULL` or a byte string.
    var unsignedValue: UInt64? {
        if case .unsigned(let value) = self { return value }
        return nil
    }

    /// The bytes, or `nil` for `NULL` or an integer.
    var bytesValue: [UInt8]? {
        if case .bytes(let value) = self { return value }
        return nil
    }

    /// The bytes the value takes in a binary-protocol result row, without
    /// the row's framing (for traffic counts): 8 for an integer, the length
    /// of a byte string, 0 for `NULL`.
    var byteCount: Int {
        switch self {
        case .null: 0
        case .unsigned: 8
        case .bytes(let bytes): bytes.count
        }
    }
}

/// What a result column is read as.
enum MySQLColumnKind: Sendable {
    /// Read into a `UInt64` (any integer column).
    case unsigned
    /// Read as bytes of any length (BLOB, VARBINARY, text).
    case bytes
}
