/// Writes one consistent state of a shared-state file as a snapshot stream
/// (docs/FORMAT.md section 6): portable, compacted (entries only, no free
/// space or tree layout), checksummed, optionally gzip-compressed.
///
/// The writer reads a pinned ``/WhyCacheState/StateSnapshot`` with the zero-copy cursor,
/// so the snapshot is exactly that state while other processes keep reading
/// and committing; and it writes front to back in one pass through a 1 MiB
/// buffer, so the output can go to a pipe.
///
/// ```swift
/// let view = try file.snapshot()
/// defer { view.close() }
/// let summary = try SnapshotWriter(compression: .gzip(level: 6))
///     .write(view, to: SnapshotStreams.writing(to: STDOUT_FILENO))
/// ```
public struct SnapshotWriter: Sendable {
    /// How the stream is encoded. Default: ``SnapshotCompression/none``.
    public var compression: SnapshotCompression
    /// The key prefixes to write; empty (the default) writes every key. The
    /// list is written in canonical form: sorted, without duplicates or
    /// prefixes that another one starts; an empty prefix means every key.
    ///
    /// A state file that subscribes to prefixes (``/WhyCacheState/SharedStateFile/subscribedPrefixes``)
    /// holds only the keys under them, so a snapshot of it names them too:
    /// its header lists the file's prefixes, narrowed to these ones when
    /// any are given, and a restore makes a file with the same subscription.
    public var prefixes: [[UInt8]]

    /// A writer with the given settings.
    public init(compression: SnapshotCompression = .none, prefixes: [[UInt8]] = []) {
        self.compression = compression
        self.prefixes = prefixes
    }

    /// Writes the state `view` holds to `sink`.
    ///
    /// The view stays open and is not closed by the writer. On an error the
    /// bytes the sink received so far are not a valid snapshot (a reader
    /// rejects them: the trailer is missing).
    ///
    /// - Parameters:
    ///   - view: the pinned state to write; it must have been built from a
    ///     change log (``/WhyCacheState/StateSnapshot/isInitialized``).
    ///   - sink: receives the output, in order.
    ///   - progress: called after each buffer handed to the sink, and at the end.
    /// - Returns: the header written and the sizes of the stream.
    /// - Throws: ``SnapshotError/uninitializedState``,
    ///   ``SnapshotError/invalidArgument(reason:)`` for a prefix longer than
    ///   a key, prefixes of which none lies within those the state
    ///   subscribes to, or a gzip level outside 0...9, ``SnapshotError/stateFile(_:)``
    ///   when the view is closed or the file is damaged (a node or leaf that
    ///   breaks the tree's invariants or lies outside the heap, found before
    ///   anything is written; a key out of order, a key count that does not
    ///   match),
    ///   ``SnapshotError/compression(reason:)``, and what `sink` throws.
    @discardableResult
    public func write(
        _ view: StateSnapshot, to sink: SnapshotSink, progress: ((SnapshotProgress) -> Void)? = nil
    ) throws(SnapshotError) -> SnapshotSummary {
        guard view.isInitialized else { throw .uninitializedState }
        // A damaged state must not seed other machines: the tree's structure
        // is checked whole before a byte is written, and the walk below
        // checks the keys, their order and their number.
        try SnapshotError.wrapping { () throws(StateFileError) in try view.verifyStructure() }
        for prefix in prefixes {
            if let problem = KeyPrefixes.lengthProblem(prefix.count) { throw .invalidArgument(reason: problem) }
        }
        // The header names exactly the keys the stream holds: of a subscribed
        // state, at most those under its prefixes.
        let held = view.file.subscription
        guard let selected = KeyPrefixes(canonicalizing: self.prefixes).intersection(held) else {
            throw .invalidArgument(
                reason: "none of the prefixes lies within those the state subscribes to (\(KeyPrefixes.describe(held.prefixes)))")
        }
        let prefixes = selected.prefixes
        // Canonical prefixes have disjoint, ascending ranges: writing them
        // one after the other keeps the keys ascending.
        let ranges = prefixes.isEmpty ? [KeyRange.all] : prefixes.map { KeyRange.prefix($0) }
        let keyCount = prefixes.isEmpty ? view.count : try Self.count(view, in: ranges)
        let header = SnapshotHeader(
            updateID: view.updateID, keyCount: keyCount, commitTimeNanoseconds: view.commitTimeNanoseconds, prefixes: prefixes)
        let headerBytes = try header.encoded()
        return try withoutActuallyEscaping(sink) { (sink) throws(SnapshotError) in
            let output = try SnapshotOutput(compression: compression, sink: sink)
            try output.append(headerBytes)
            var rules = SnapshotKeyRules(prefixes: prefixes)
            var written = 0
            var reportedFlushes = 0
            // A damaged file is reported rather than written: the stream
            // never holds what a reader would reject.
            func damaged(_ reason: String) -> SnapshotError {
                .stateFile(.corrupted(path: view.file.path, reason: reason))
            }
            for range in ranges {
                var cursor = try SnapshotError.wrapping { () throws(StateFileError) in try view.trieCursor(in: range) }
                while try SnapshotError.wrapping({ () throws(StateFileError) in try cursor.next() }) {
                    let key = cursor.currentKey
                    let value = cursor.currentValue
                    if let problem = SnapshotKeyRules.keyLengthProblem(UInt64(key.count))
                        ?? SnapshotKeyRules.valueLengthProblem(UInt64(value.count)) ?? rules.admit(key)
                    {
                        throw damaged(problem)
                    }
                    guard written < keyCount else { throw damaged("the state holds more keys than its count, \(keyCount)") }
                    try output.appendEntry(key: key, value: value)
                    written += 1
                    if output.flushes != reportedFlushes, let progress {
                        reportedFlushes = output.flushes
                        progress(SnapshotProgress(keysDone: written, keyCount: keyCount, transferredBytes: output.transferredBytes))
                    }
                }
            }
            guard written == keyCount else { throw damaged("the state holds \(written) keys, its count says \(keyCount)") }
            try output.finish(keyCount: keyCount)
            progress?(SnapshotProgress(keysDone: written, keyCount: keyCount, transferredBytes: output.transferredBytes))
            return SnapshotSummary(header: header, streamBytes: output.streamBytes, transferredBytes: output.transferredBytes)
        }
    }

    /// The number of keys of `view` in `ranges` (a first pass, for the
    /// header, when only some prefixes are written).
    private static func count(_ view: StateSnapshot, in ranges: [KeyRange]) throws(SnapshotError) -> Int {
        try SnapshotError.wrapping { () throws(StateFileError) in
            var count = 0
            for range in ranges {
                var cursor = try view.trieCursor(in: range)
                while try cursor.next() { count += 1 }
            }
            return count
        }
    }
}
