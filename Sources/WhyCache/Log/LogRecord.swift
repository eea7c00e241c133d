/// An ordered list of changes that the log stores and replays as one unit.
///
/// A record is what a datastore keeps under one update id. Its encoding is
/// versioned and checksummed (see `docs/FORMAT.md`); a record of a
/// single small key costs eight bytes more than its key and value.
///
/// ```swift
/// let record = LogRecord([.set(key: Array("color".utf8), value: Array("blue".utf8))])
/// let bytes = try record.encoded()
/// let decoded = try LogRecord(decoding: bytes)   // == record
/// ```
///
/// Use `LogRecordView` to read records without copying them, and
/// `LogRecordSplitter` to turn a large batch into records of bounded size.
public struct LogRecord: Sendable, Hashable {
    /// The operations, applied in order.
    public var operations: [LogOperation]

    /// Creates a record of `operations`, applied in order.
    public init(_ operations: [LogOperation]) {
        self.operations = operations
    }

    /// Decodes a record, checking its version, checksum and structure.
    ///
    /// - Throws: a ``LogRecordError`` describing why `bytes` is not a valid record.
    public init(decoding bytes: [UInt8]) throws(LogRecordError) {
        // `withUnsafeBytes` is `rethrows` (untyped); carry the typed error out in a `Result`.
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(LogRecordError) in try LogRecord(decoding: raw) }
        }
        self = try result.get()
    }

    /// Decodes a record, checking its version, checksum and structure.
    ///
    /// - Parameter bytes: The encoded record; it is only read during the call.
    /// - Throws: a ``LogRecordError`` describing why `bytes` is not a valid record.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(LogRecordError) {
        self.operations = try LogRecordView(validating: bytes).operations
    }

    /// The number of bytes ``encoded()`` produces, or an error if the record
    /// cannot be encoded.
    public func encodedSize() throws(LogRecordError) -> Int {
        try LogRecordFormat.fixedOverhead(operationCount: operations.count) + validatedBodySize()
    }

    /// Encodes the record.
    ///
    /// - Throws: ``LogRecordError/noOperations`` for an empty record, or a key
    ///   or value limit error naming the first offending operation.
    public func encoded() throws(LogRecordError) -> [UInt8] {
        LogRecordFormat.encode(operations, bodySize: try validatedBodySize())
    }

    /// Validates every operation and returns their total encoded size.
    private func validatedBodySize() throws(LogRecordError) -> Int {
        guard !operations.isEmpty else { throw .noOperations }
        var size = 0
        for (index, operation) in operations.enumerated() {
            try LogRecordFormat.validate(operation, index: index)
            size += LogRecordFormat.encodedSize(of: operation)
        }
        return size
    }
}
