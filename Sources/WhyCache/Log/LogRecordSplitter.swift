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
package struct LogRecordSplitter: Sendable, Hashable {
    /// The maximum record sizes a splitter accepts: from the smallest record
    /// that can hold a one-byte key up to ``/WhyCacheSupport/WhyCacheLimits/maximumRecordSize``.
    package static let allowedMaximumRecordSizes = LogRecordFormat.minimumRecordSize...WhyCacheLimits.maximumRecordSize

    /// The largest encoded record, checksum included, that ``split(_:)`` produces.
    package let maximumRecordSize: Int

    /// Creates a splitter producing records of at most `maximumRecordSize` bytes.
    ///
    /// - Throws: ``LogRecordError/invalidMaximumRecordSize(_:)`` when the size
    ///   is outside ``allowedMaximumRecordSizes``.
    package init(maximumRecordSize: Int = WhyCacheLimits.defaultMaximumRecordSize) throws(LogRecordError) {
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
    package func split(_ operations: some Sequence<LogOperation>) throws(LogRecordError) -> [[UInt8]] {
        guard let write = try validate(operations) else { return [] }
        return pack([write]).records
    }

    /// Checks every operation of one write against the key and value limits
    /// and against ``maximumRecordSize``, and returns them ready for
    /// ``pack(_:)``, or nil when there are none.
    ///
    /// - Throws: as ``split(_:)``, naming the first offending operation.
    func validate(_ operations: some Sequence<LogOperation>) throws(LogRecordError) -> ValidatedWrite? {
        var validated: [LogOperation] = []
        var bodySize = 0
        for (index, operation) in operations.enumerated() {
            try LogRecordFormat.validate(operation, index: index)
            let size = LogRecordFormat.encodedSize(of: operation)
            let alone = LogRecordFormat.fixedOverhead(operationCount: 1) + size
            guard alone <= maximumRecordSize else {
                throw .operationTooLarge(operationIndex: index, recordSize: alone, maximumRecordSize: maximumRecordSize)
            }
            validated.append(operation)
            bodySize += size
        }
        return validated.isEmpty ? nil : ValidatedWrite(operations: validated, bodySize: bodySize)
    }

    /// Encodes `writes`, in order, into as few records of at most
    /// ``maximumRecordSize`` bytes as the rule below allows, and tells which
    /// record holds the last operation of each write.
    ///
    /// **A write that fits in one record is never split.** When the record
    /// being filled cannot take all of such a write, the write starts the next
    /// record; so its operations reach every reader together, in one record,
    /// whatever other writes share that record. A write too large for one
    /// record is spread over consecutive records, filling each (as ``split(_:)``
    /// does); the writes around it may share its first and last record.
    /// Operations keep their order, within a write and across writes.
    ///
    /// - Precondition: every write was validated by a splitter with the same
    ///   ``maximumRecordSize`` (an operation that is still too large gets a
    ///   record of its own).
    func pack(_ writes: [ValidatedWrite]) -> Packing {
        var packing = Packing(records: [], lastRecordIndices: [])
        packing.lastRecordIndices.reserveCapacity(writes.count)
        var pending: [LogOperation] = []
        var pendingBodySize = 0
        func fits(_ count: Int, _ bodySize: Int) -> Bool {
            LogRecordFormat.fixedOverhead(operationCount: count) + bodySize <= maximumRecordSize
        }
        func closeRecord() {
            guard !pending.isEmpty else { return }
            packing.records.append(LogRecordFormat.encode(pending, bodySize: pendingBodySize))
            pending.removeAll(keepingCapacity: true)
            pendingBodySize = 0
        }
        for write in writes {
            let count = write.operations.count
            if !fits(pending.count + count, pendingBodySize + write.bodySize), fits(count, write.bodySize) {
                closeRecord()
            }
            // Every prefix of a write that fits is smaller still, so the loop
            // closes a record inside a write only when the write cannot fit in one.
            for operation in write.operations {
                let size = LogRecordFormat.encodedSize(of: operation)
                if !pending.isEmpty, !fits(pending.count + 1, pendingBodySize + size) { closeRecord() }
                pending.append(operation)
                pendingBodySize += size
            }
            packing.lastRecordIndices.append(packing.records.count)
        }
        closeRecord()
        return packing
    }
}

extension LogRecordSplitter {
    /// The operations of one write, checked by `LogRecordSplitter/validate(_:)`:
    /// never empty, each within the limits and small enough for a record of
    /// its own.
    struct ValidatedWrite: Sendable {
        /// The operations, in the writer's order.
        let operations: [LogOperation]
        /// The sum of their encoded sizes inside a record.
        let bodySize: Int
    }

    /// The records of `LogRecordSplitter/pack(_:)` and where each write ended.
    struct Packing: Sendable {
        /// The encoded records, in order.
        var records: [[UInt8]]
        /// For each write, in order, the index in `records` of the record
        /// that holds its last operation.
        var lastRecordIndices: [Int]
    }
}
