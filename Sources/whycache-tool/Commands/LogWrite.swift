import WhyCache

/// The operations of one `set` or `delete`, each checked against the log's
/// limits as it is added, and their write to the log.
///
/// Invariant: every operation in ``operations`` has a key of 1…1024 bytes,
/// a value of at most ``WhyCacheLimits/maximumValueLength`` bytes, and fits
/// in a record of ``maximumRecordSize`` bytes on its own; so a write
/// refuses nothing it was given, and a bad input is refused before anything
/// is written.
struct LogWrite {
    /// The operations, in the order given.
    private(set) var operations: [LogOperation] = []

    /// The largest record the write produces: the library's default (1 MiB),
    /// or the size of the record that the largest single operation needs,
    /// if that is larger. Many small operations share records of at most
    /// this size; a value too large for 1 MiB gets a record sized for it.
    private(set) var maximumRecordSize = WhyCacheLimits.defaultMaximumRecordSize

    /// An empty write.
    init() {}

    /// Adds `operation` at the end.
    ///
    /// - Parameter context: where the operation came from, as a prefix of
    ///   messages ("--from-json line 3"), or nil for the command line.
    /// - Throws: ``ToolUsageError`` for an empty or too long key or a too
    ///   long value; nothing is added then.
    mutating func append(_ operation: LogOperation, context: String?) throws(ToolUsageError) {
        let recordSize: Int
        do {
            recordSize = try LogRecord([operation]).encodedSize()
        } catch {
            throw ToolUsageError((context.map { "\($0): " } ?? "") + Self.describe(error))
        }
        maximumRecordSize = max(maximumRecordSize, recordSize)
        operations.append(operation)
    }

    /// Writes the operations to the log of `log`, in order, and returns the
    /// update id of the record holding the last one.
    ///
    /// They go into as few records of at most ``maximumRecordSize`` bytes
    /// as they fit in, appended with one call (all or nothing on a file
    /// datastore): operations that fit in one record reach every reader
    /// together.
    ///
    /// - Parameter state: With a state file (its path and the configuration
    ///   of a cache on it), the write goes through ``SharedCache/write(_:)``,
    ///   and the state file holds it (or something newer) on return. Without
    ///   one, the records are appended to the datastore directly: no state
    ///   file is opened or created, and hosts see the write at their next
    ///   update.
    /// - Returns: with no operations, the state file's update id, or the
    ///   log's latest id without a state file; nothing is written.
    func write(to log: LogConnection, state: (path: String, configuration: SharedCache.Configuration)?) async throws -> UInt64 {
        if let state {
            var configuration = state.configuration
            configuration.maximumRecordSize = maximumRecordSize
            return try await log.withCache(statePath: state.path, configuration: configuration) { cache in
                try await cache.write(operations)
            }
        }
        let records = try LogRecordSplitter(maximumRecordSize: maximumRecordSize).split(operations)
        return try await log.withDatastore { datastore in
            guard !records.isEmpty else { return try await datastore.latestUpdateID() }
            let ids = try await datastore.append(contentsOf: records)
            guard ids.count == records.count, let last = ids.last else {
                throw DatastoreError.contractViolated(reason: "the datastore returned \(ids.count) ids for \(records.count) records")
            }
            return last
        }
    }

    /// A message for an operation that no record can hold.
    private static func describe(_ error: LogRecordError) -> String {
        switch error {
        case .emptyKey:
            "the key is empty; keys have \(WhyCacheLimits.minimumKeyLength) to \(WhyCacheLimits.maximumKeyLength) bytes"
        case .keyTooLong(_, let length):
            "the key has \(length) bytes; keys have at most \(WhyCacheLimits.maximumKeyLength)"
        case .valueTooLong(_, let length):
            "the value has \(length) bytes; values have at most \(WhyCacheLimits.maximumValueLength) (64 MiB)"
        default:
            "\(error)"
        }
    }
}
