import CMariaDB

/// What one statement of a multi-statement request returned
/// (``MySQLConnection/runBatch(_:columns:)``).
struct MySQLBatchResult: Sendable {
    /// The rows the statement changed (with `CLIENT_FOUND_ROWS`: matched); 0
    /// for a statement that changes none.
    var affectedRows: UInt64

    /// The id the statement's result carried: the value an `UPDATE` gave
    /// `LAST_INSERT_ID(expr)`, or an `AUTO_INCREMENT` value.
    var insertID: UInt64

    /// The rows of a statement that returned a result set; empty otherwise.
    var rows: [[MySQLValue]]
}

/// A multi-statement request stopped at a statement that failed.
///
/// When the server reported the failure (``MySQLClientError/comesFromServer``),
/// the statements after it did not run. When the client could not read the
/// statement's result (a broken connection, a result of an unexpected
/// shape), it cannot know how far the server got.
struct MySQLBatchFailure: Error {
    /// The results of the statements before the one that failed, in order:
    /// the failed statement's index is `completed.count`.
    var completed: [MySQLBatchResult]

    /// Why that statement failed.
    var error: MySQLClientError
}

/// Reads the rows of a text-protocol result set.
///
/// Together with `MySQLConnection.swift` and `MySQLStatement.swift`, the only
/// code that touches libmariadb's pointers.
enum MySQLTextRows {
    /// Every row of `result`, each column read as `columns` says: an
    /// unsigned integer from its decimal text, bytes as they came. (A stored
    /// result holds every row in memory: fetching cannot fail midway.)
    ///
    /// - Precondition (unsafe): `result` is a stored result
    ///   (`mysql_store_result`) that is not freed before this returns.
    static func read(_ result: UnsafeMutablePointer<MYSQL_RES>, columns: [MySQLColumnKind]) throws(MySQLClientError) -> [[MySQLValue]] {
        let count = Int(mysql_num_fields(result))
        guard count == columns.count else {
            throw .unexpectedResult("a statement returned \(count) columns, expected \(columns.count)")
        }
        var rows: [[MySQLValue]] = []
        rows.reserveCapacity(Int(mysql_num_rows(result)))
        while let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else {
                throw .unexpectedResult("a result row came without its column lengths")
            }
            var values: [MySQLValue] = []
            values.reserveCapacity(count)
            for (index, kind) in columns.enumerated() {
                guard let field = row[index] else {
                    values.append(.null)
                    continue
                }
                let bytes = UnsafeRawBufferPointer(start: field, count: Int(lengths[index]))
                switch kind {
                case .bytes:
                    values.append(.bytes(Array(bytes)))
                case .unsigned:
                    guard let number = unsigned(decimal: bytes) else {
                        throw .unexpectedResult("column \(index) holds \(bytes.count) bytes that are not an unsigned integer")
                    }
                    values.append(.unsigned(number))
                }
            }
            rows.append(values)
        }
        return rows
    }

    /// The unsigned integer whose decimal digits `text` holds, or `nil`
    /// when it holds anything else or a number beyond `UInt64`.
    static func unsigned(decimal text: UnsafeRawBufferPointer) -> UInt64? {
        guard !text.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in text {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = shifted.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { return nil }
            value = sum
        }
        return value
    }
}
