import WhyCache

/// A table name that is safe to put into SQL text.
///
/// Values can be bound as parameters, but table names cannot, so they are
/// spliced into the SQL the datastore prepares. To make that safe, a
/// `MySQLIdentifier` only exists for names of ASCII letters, digits and `_`,
/// starting with a letter or `_`, of at most ``maximumLength`` characters
/// (which leaves room for the suffixes of the other tables within MySQL's
/// 64-character limit). It is always written back-quoted.
public struct MySQLIdentifier: Sendable, Hashable, CustomStringConvertible {
    /// The longest accepted name.
    public static let maximumLength = 40

    /// The name, as given.
    public let name: String

    /// Validates `name`.
    ///
    /// - Throws: `DatastoreError/invalidConfiguration(reason:)` when `name`
    ///   is empty, too long, or holds anything but `[A-Za-z0-9_]` (or starts
    ///   with a digit).
    public init(_ name: String) throws(DatastoreError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maximumLength else {
            throw .invalidConfiguration(reason: "a table name must have 1 to \(Self.maximumLength) characters")
        }
        func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F }
        func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
        guard isLetter(bytes[0]), bytes.allSatisfy({ isLetter($0) || isDigit($0) }) else {
            throw .invalidConfiguration(reason: "a table name may hold only ASCII letters, digits and '_', and may not start with a digit")
        }
        self.name = name
    }

    /// The name followed by `suffix`, back-quoted for SQL.
    func quoted(suffix: String = "") -> String {
        "`\(name)\(suffix)`"
    }

    /// The name.
    public var description: String { name }
}
