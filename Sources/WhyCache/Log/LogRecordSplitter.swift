/// Packs a batch of operations into as few encoded records as possible, each
/// no larger than a maximum size, keeping the operations in order.
///
/// Splitting is all or nothing: every operation is validated, and an
/// operation that cannot fit in a record of its own is an error, before any
/// record is returned. A caller that writes the records only after `split`
/// returns therefore never writes part of an invalid batch.
///
/// ```swift
/// let splitter = try LogRecordSplitter(maximumRecordSize: 1 << 20)
/// for record in try splitter.split(operations) {
///     _ = try await datastore.append(record)
/// }
/// ```
public struct LogRecordSplitter: Sendable, Hashable {
    /// The maximum record sizes a splitter accepts: from the smallest record
    /// that can hold a one-byte key up to ``WhyCacheLimits/maximumRecordSize``.
    public static let allowedMaximumRecordSizes = LogRecordFormat.minimumRecordSize...WhyCacheLimits.maximumRecordSize

    /// The largest encoded record, checksum included, that ``split(_:)`` produces.
    public let maximumRecordSize: Int

    /// Creates a splitter producing records of at most `maximumRecordSize` bytes.
    ///
    /// - Throws: ``LogRecordError/invalidMaximumRecordSize(_:)`` when the size
    ///   is outside ``allowedMaximumRecordSizes``.
    public init(maximumRecordSize: Int = WhyCacheLimits.defaultMaximumRecordSize) throws(LogRecordError) {
        guard Self.allowedMaximumRecordSizes.contains(maximumRecordSize) else {
            throw .invalidMaximumRecordSize(maximumRecordSize)
        }
        self.maximumRecordSize = maximumRecordSize
    }

    /// Encodes `operations`, in order, into records of at most
    /// ``maximumRecordSize`` bytes. Consecutive operations share a record
    /// while they fit. An empty input yields no records.
    ///
    /// - Throws: a key or value limit error, or
    ///   ``LogRecordError/operationTooLarge(operationIndex:recordSize:maximumRecordSize:)``,
    ///   naming the first offending operation; no record is returned then.
    public func split(_ operations: some Sequence<LogOperation>) throws(LogRecordError) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var pending: [LogOperation] = []
        var pendingBodySize = 0
        for (index, operation) in operations.enumerated() {
            try LogRecordFormat.validate(operation, index: index)
            let size = LogRecordFormat.encodedSize(of: operation)
            let alone = LogRecordFormat.fixedOverhead(operationCount: 1) + size
            guard alone <= maximumRecordSize else {
                throw .operationTooLarge(operationIndex: index, recordSize: alone, maximumRecordSize: maximumRecordSize)
            }
            let together = LogRecordFormat.fixedOverhead(operationCount: pending.count + 1) + pendingBodySize + size
            if !pending.isEmpty && together > maximumRecordSize {
                records.append(LogRecordFormat.encode(pending, bodySize: pendingBodySize))
                pending.removeAll(keepingCapacity: true)
                pendingBodySize = 0
            }
            pending.append(operation)
            pendingBodySize += size
        }
        if !pending.isEmpty {
            records.append(LogRecordFormat.encode(pending, bodySize: pendingBodySize))
        }
        return records
    }
}
