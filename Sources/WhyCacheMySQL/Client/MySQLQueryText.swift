/// The bytes of a text query (``MySQLConnection/runBatch(_:columns:)``)
/// that carries its values as literals.
///
/// Only what this type writes goes into a query besides fixed SQL: decimal
/// unsigned integers, hex literals of bytes (`x'…'`, valid whatever the
/// connection's character set and `sql_mode`), `NULL`, and SQL text the
/// datastore composed from validated identifiers. So no value can end a
/// literal early or add a statement.
struct MySQLQueryText {
    /// The query so far.
    private(set) var bytes: [UInt8] = []

    /// An empty query with room for about `capacity` bytes.
    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Appends SQL text the datastore composed (never a value).
    mutating func append(_ sql: String) {
        bytes.append(contentsOf: sql.utf8)
    }

    /// Appends `number` in decimal.
    mutating func append(_ number: UInt64) {
        bytes.append(contentsOf: MySQLQueryText.decimal(number).utf8)
    }

    /// Appends `value` as a hex literal, `x'…'`.
    mutating func appendHexLiteral(_ value: some Collection<UInt8>) {
        bytes.append(UInt8(ascii: "x"))
        bytes.append(UInt8(ascii: "'"))
        for byte in value {
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0x0f)])
        }
        bytes.append(UInt8(ascii: "'"))
    }

    /// Appends `value` as a hex literal, or `NULL` when it is `nil`.
    mutating func appendHexLiteralOrNull(_ value: [UInt8]?) {
        guard let value else { return append("NULL") }
        appendHexLiteral(value)
    }

    /// `number` in decimal, for SQL text (a literal in a value slot).
    static func decimal(_ number: UInt64) -> String {
        String(number)
    }

    /// The bytes of a hex literal's digits.
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The length of `count` bytes as a hex literal (`x'…'`).
    static func hexLiteralLength(_ count: Int) -> Int {
        3 + 2 * count
    }
}
