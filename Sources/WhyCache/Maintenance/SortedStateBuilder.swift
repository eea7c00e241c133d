import Glibc

/// Builds the state at an update id in a private state file in **key
/// order**, with bounded memory: an external merge sort of the checkpoint
/// and the log, then one pass that inserts the surviving keys in order.
///
/// Why not replay the log into the file as ``PrivateStateBuilder`` does?
/// Replaying applies keys in log order, which for a large state is random
/// order: every insert touches a different leaf, so the whole file stays
/// resident while it is built, and the finished tree's leaves lie in the
/// file in insertion order, so walking it in key order (to write the
/// checkpoint) touches the whole file again. Inserting in key order instead
/// appends leaves one after the other: the build and the later walk both
/// move through the file sequentially, and the pages behind them can be
/// released (``/WhyCacheState/SharedStateFile/releaseResidentPages()``).
///
/// The memory held is one run's arena (``runBudget`` bytes plus 32 bytes per
/// operation), then one 1 MiB buffer per run while merging. Runs are files
/// in the scratch folder named after the scratch file (so a killed build's
/// runs are deleted with it by `AbandonedFiles`).
struct SortedStateBuilder {
    let datastore: any Datastore
    let configuration: SharedCache.Configuration
    /// Bytes of operations gathered per sorted run.
    var runBudget = 32 << 20
    /// Bytes inserted between two releases of the file's resident pages.
    var releaseInterval = 32 << 20

    /// Builds into `file` (new and private) the state of `checkpoint` (if
    /// any) and the log after it through `limit`, using files named
    /// `runPrefix` + a number; returns the position reached (the last
    /// record read, or the checkpoint's id) and how much of the log it read.
    /// The file's state is marked initialized.
    ///
    /// - Precondition: `file` subscribes to no prefixes (``HistoryRewriter``
    ///   refuses a configuration that does); the insert of a key outside a
    ///   subscription would fail with ``/WhyCacheState/StateFileError/keyOutsideSubscription(path:)``.
    func build(
        into file: SharedStateFile, from checkpoint: CheckpointInfo?, through limit: UInt64, runPrefix: String
    ) async throws(CacheError) -> (position: UInt64, logRecords: UInt64, logBytes: UInt64) {
        var runs: [String] = []
        defer { for run in runs { FileSystem<SystemCallError>.removeLeftover(run) } }
        var writer = SortedRunWriter(budget: runBudget)
        func spillIfFull(force: Bool = false) throws(CacheError) {
            guard writer.isFull || (force && !writer.isEmpty) else { return }
            let path = "\(runPrefix)\(runs.count)"
            runs.append(path)
            do { try writer.writeRun(to: path) } catch { throw CacheError(error) }
        }

        var position: UInt64 = 0
        var logRecords: UInt64 = 0
        var logBytes: UInt64 = 0
        if let checkpoint {
            position = checkpoint.updateID
            try await datastore.forEachCheckpointPayload(of: checkpoint, limits: configuration.readPageLimits) { (payload) throws(CacheError) in
                try Self.gather(LogEntry(updateID: checkpoint.updateID, payload: payload), into: &writer)
                try spillIfFull()
            }
        }
        position = try await datastore.forEachPage(after: position, through: limit, limits: configuration.readPageLimits) { (page) throws(CacheError) in
            for entry in page {
                try Self.gather(entry, into: &writer)
                try spillIfFull()
                logBytes += UInt64(entry.payload.count)
            }
            logRecords += UInt64(page.count)
        }
        try spillIfFull(force: true)
        try insertMerged(runs, into: file, position: position)
        return (position, logRecords, logBytes)
    }

    /// Adds the operations of one record to the run being gathered.
    private static func gather(_ entry: LogEntry, into writer: inout SortedRunWriter) throws(CacheError) {
        let failure = entry.payload.withUnsafeBytes { bytes -> LogRecordError? in
            do throws(LogRecordError) {
                let record = try LogRecordView(validating: bytes)
                record.forEachOperation { kind, key, value in writer.append(kind, key: key, value: value) }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw .corruptRecord(updateID: entry.updateID, failure) }
    }

    /// Merges the runs (a later run's operation on a key wins) and inserts
    /// every key whose last operation is a set, in key order.
    private func insertMerged(_ runs: [String], into file: SharedStateFile, position: UInt64) throws(CacheError) {
        // The runs' errors and the state file's become cache errors where they arise.
        func run<T>(_ body: () throws(SortedRunError) -> T) throws(CacheError) -> T {
            do { return try body() } catch { throw CacheError(error) }
        }
        func state<T>(_ body: () throws(StateFileError) -> T) throws(CacheError) -> T {
            do { return try body() } catch { throw CacheError(error) }
        }
        var readers: [SortedRunReader] = []
        for (order, path) in runs.enumerated() {
            readers.append(try run { () throws(SortedRunError) in try SortedRunReader(path: path, order: order) })
        }
        var heap = RunHeap(readers.filter { !$0.isAtEnd })
        var transaction = try state { () throws(StateFileError) in try file.beginWrite() }
        do throws(CacheError) {
            var operations = 0
            var bytesSinceRelease = 0
            while let winner = heap.popMinimum() {
                // The first reader popped for a key is its latest run;
                // the same key in earlier runs is skipped.
                if winner.kind == .set {
                    try state { () throws(StateFileError) in
                        try winner.value.withUnsafeBytesTyped { (value) throws(StateFileError) in
                            try winner.key.withUnsafeBytesTyped { (key) throws(StateFileError) in
                                try transaction.setValue(bytes: value, forKeyBytes: key)
                            }
                        }
                    }
                    operations += 1
                    bytesSinceRelease += winner.key.count + winner.value.count
                }
                while let other = heap.popMinimum(ifKeyEquals: winner.key) {
                    try run { () throws(SortedRunError) in try other.advance() }
                    if !other.isAtEnd { heap.insert(other) }
                }
                try run { () throws(SortedRunError) in try winner.advance() }
                if !winner.isAtEnd { heap.insert(winner) }
                if operations >= configuration.maximumOperationsPerTransaction {
                    try state { () throws(StateFileError) in try transaction.commit() }
                    transaction = try state { () throws(StateFileError) in try file.beginWrite() }
                    operations = 0
                }
                if bytesSinceRelease >= releaseInterval {
                    file.releaseResidentPages()
                    bytesSinceRelease = 0
                }
            }
            try state { () throws(StateFileError) in
                try transaction.setUpdateID(position)
                try transaction.commitInitialized()
            }
            file.releaseResidentPages()
        } catch {
            transaction.abandon()
            throw error
        }
    }
}

/// A binary min-heap of run readers ordered by their current key, ties
/// broken by the later run first.
private struct RunHeap {
    private var items: [SortedRunReader]

    init(_ readers: [SortedRunReader]) {
        items = []
        for reader in readers { insert(reader) }
    }

    /// Whether `a` comes out before `b`.
    private static func precedes(_ a: SortedRunReader, _ b: SortedRunReader) -> Bool {
        if a.key != b.key { return a.key.lexicographicallyPrecedes(b.key) }
        return a.order > b.order
    }

    mutating func insert(_ reader: SortedRunReader) {
        items.append(reader)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the reader with the smallest key.
    mutating func popMinimum() -> SortedRunReader? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let minimum = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && Self.precedes(items[left], items[smallest]) { smallest = left }
            if right < items.count && Self.precedes(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return minimum
    }

    /// Removes and returns the reader with the smallest key if that key is `key`.
    mutating func popMinimum(ifKeyEquals key: [UInt8]) -> SortedRunReader? {
        guard let first = items.first, first.key == key else { return nil }
        return popMinimum()
    }
}
