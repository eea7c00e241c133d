import Synchronization

/// A pinned, consistent view of a shared-state file at one commit.
///
/// Everything read through one snapshot — any number of lookups and whole
/// iterations — sees the same point in time, however many transactions other
/// processes commit meanwhile. Taking a snapshot never waits for a writer and
/// never blocks one; while it is open, the blocks it can see are not reused,
/// so keep snapshots short-lived (a request, an iteration) and call ``close()``
/// when done (or let it be released). Buffers handed out by a snapshot's
/// closures point into shared memory and are valid only during the call.
///
/// A snapshot may be used from any thread, one at a time per cursor.
public final class StateSnapshot: @unchecked Sendable, KeyValueReading {
    // @unchecked: the pinned state is immutable, and `closed` is atomic:
    // of concurrent `close()` calls exactly one unpins. Reading from one
    // thread while another closes is the caller's error (the pin may be gone
    // mid-read); every read that starts after `close()` fails.

    /// The file this snapshot reads (kept open while the snapshot lives).
    public let file: SharedStateFile
    /// The log position this state corresponds to.
    public let updateID: UInt64
    /// The number of keys in this state.
    public let count: Int
    /// When the transaction that produced this state committed (nanoseconds since 1970).
    public let commitTimeNanoseconds: UInt64
    /// Whether this state was built from a change log, rather than being the
    /// empty state of a file that was only created (see
    /// `WriteTransaction/markInitialized()`).
    public let isInitialized: Bool

    let pin: Pin
    let reader: TrieReader
    private let closed = Atomic<Bool>(false)

    init(file: SharedStateFile, pin: Pin) {
        self.file = file
        self.pin = pin
        self.updateID = pin.updateID
        self.count = Int(pin.keyCount)
        self.commitTimeNanoseconds = pin.time
        self.isInitialized = pin.flags & FileLayout.commitFlagInitialized != 0
        self.reader = TrieReader(file: file.mapped, heapEnd: pin.heapEnd)
    }

    deinit { close() }

    /// Checks the whole pinned state as ``SharedStateFile/verify()`` checks
    /// the current one; returns the number of keys.
    package func verify() throws(StateFileError) -> Int {
        try TrieVerifier(reader: reader).verify(root: pin.root, keyCount: pin.keyCount)
    }

    /// Checks the structure of the pinned tree (``TrieVerifier/checkStructure(root:)``).
    package func verifyStructure() throws(StateFileError) {
        try TrieVerifier(reader: reader).checkStructure(root: pin.root)
    }

    /// The payload checksum of the log record ``updateID`` — the one this
    /// state applied last — when the writer that committed the state
    /// recorded it (docs/FORMAT.md section 1.7); nil otherwise.
    package var appliedRecordChecksum: UInt32? {
        CommitRecord.appliedRecordChecksum(
            in: UnsafeRawBufferPointer(start: file.mapped.base + pin.commitOffset, count: FileLayout.commitRecordSize))
    }

    /// Releases the snapshot: the space it kept alive may be reused. Reading
    /// after `close()` fails with ``StateFileError/closed(path:)``.
    public func close() {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        file.readers.unpin(pin)
    }

    /// Calls `body` with each key and value in `range`, in ascending key order,
    /// as buffers valid during the call, until `body` returns false (unlike
    /// `Sequence.forEach`, whose closure cannot stop it).
    ///
    /// - Throws: a ``StateFileError`` when the file is damaged or the
    ///   snapshot closed.
    public func visitEntries(
        in range: KeyRange = .all, _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool
    ) throws(StateFileError) {
        var cursor = try trieCursor(in: range)
        while try cursor.next() {
            if !body(cursor.currentKey, cursor.currentValue) { return }
        }
    }

    /// Calls a throwing `body` with each key and value in `range`, in
    /// ascending key order, until `body` returns false or throws. Swift
    /// infers a throwing closure's error as `any Error`, so this form throws
    /// `any Error`; a `body` that does not throw selects the form that throws
    /// ``StateFileError`` only.
    ///
    /// - Throws: a ``StateFileError`` when the file is damaged or the
    ///   snapshot closed, or what `body` throws.
    public func visitEntries<Failure: Error>(
        in range: KeyRange = .all,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(Failure) -> Bool
    ) throws {
        var failure: Failure?
        try visitEntries(in: range) { key, value in
            do throws(Failure) { return try body(key, value) } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
    }

    /// A cursor over the entries in `range`, in ascending key order. It keeps
    /// this snapshot alive.
    public func makeCursor(in range: KeyRange = .all) -> StateCursor {
        StateCursor(snapshot: self, range: range)
    }

    /// The entries in `range` as arrays, in ascending key order.
    public func entries(in range: KeyRange = .all) throws(StateFileError) -> [(key: [UInt8], value: [UInt8])] {
        var result: [(key: [UInt8], value: [UInt8])] = []
        try visitEntries(in: range) { key, value in result.append((Array(key), Array(value))); return true }
        return result
    }

    /// The keys in `range`, in ascending order.
    public func keys(in range: KeyRange = .all) throws(StateFileError) -> [[UInt8]] {
        var result: [[UInt8]] = []
        try visitEntries(in: range) { key, _ in result.append(Array(key)); return true }
        return result
    }

    /// The values in `range`, in ascending order of their keys.
    public func values(in range: KeyRange = .all) throws(StateFileError) -> [[UInt8]] {
        var result: [[UInt8]] = []
        try visitEntries(in: range) { _, value in result.append(Array(value)); return true }
        return result
    }

    /// Calls `body` with the value under the borrowed `key` in this
    /// snapshot's state as a buffer in shared memory (no copy), or with nil:
    /// the read every other form goes through (``KeyValueReading``).
    ///
    /// - Parameters:
    ///   - key: the key's bytes, 1 to ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    ///   - body: what to do with the value; it may throw a ``StateFileError`` of its own.
    /// - Throws: a ``StateFileError`` for an invalid key, a damaged file or
    ///   a closed snapshot, or the one `body` throws.
    public func withValue<Result>(
        forKeyBytes key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws(StateFileError) -> Result
    ) throws(StateFileError) -> Result {
        try checkOpen()
        try SharedStateFile.validate(key: key)
        return try body(reader.lookup(key, root: pin.root))
    }

    /// The zero-copy cursor over `range` (keys in its own buffer, values in
    /// the mapping), for the iterations of this snapshot and of the
    /// snapshot writer; valid while the snapshot stays open.
    package func trieCursor(in range: KeyRange) throws(StateFileError) -> TrieCursor {
        try checkOpen()
        return TrieCursor(reader: reader, root: pin.root, range: range)
    }

    /// Calls `visit` once for every key whose value in this snapshot differs
    /// from its value in `older`, in ascending key order, with the value
    /// here (nil: the key is absent here), until `visit` returns false.
    /// Reads only the parts of the two trees that differ (``TrieDiff``), so
    /// its cost follows the changes between the two states, not their size.
    ///
    /// - Precondition: both snapshots are of this one open file object
    ///   (blocks are compared by offset); else
    ///   ``StateFileError/invalidOptions(reason:)``.
    /// - Returns: whether every change was visited (false: `visit` stopped).
    /// - Throws: ``StateFileError/closed(path:)`` when either snapshot is
    ///   closed, ``StateFileError/corrupted(path:reason:)`` for a damaged
    ///   tree, or what `visit` throws.
    @discardableResult
    package func forEachChange(
        since older: StateSnapshot,
        _ visit: (_ key: UnsafeRawBufferPointer, _ newValue: UnsafeRawBufferPointer?) throws(StateFileError) -> Bool
    ) throws(StateFileError) -> Bool {
        try checkOpen()
        try older.checkOpen()
        guard older.file === file else {
            throw .invalidOptions(reason: "the states compared must be snapshots of one open file")
        }
        var diff = TrieDiff(old: older.reader, new: reader)
        return try diff.forEachChange(oldRoot: older.pin.root, newRoot: pin.root, visit)
    }

    /// Throws ``StateFileError/closed(path:)`` once ``close()`` was called.
    func checkOpen() throws(StateFileError) {
        if closed.load(ordering: .acquiring) { throw .closed(path: file.path) }
    }
}

/// A position in the ordered entries of a ``StateSnapshot``.
///
/// ```swift
/// var cursor = snapshot.makeCursor(in: .prefix(Array("user:".utf8)))
/// while let (key, value) = try cursor.next() { ... }
/// ```
public struct StateCursor {
    private let snapshot: StateSnapshot
    private let box: Box

    /// Holds the non-copyable walk so that this cursor stays copyable (copies
    /// share one position, as they did when the walk was a class).
    private final class Box {
        var cursor: TrieCursor
        init(_ cursor: consuming TrieCursor) { self.cursor = cursor }
    }

    init(snapshot: StateSnapshot, range: KeyRange) {
        self.snapshot = snapshot
        self.box = Box(TrieCursor(reader: snapshot.reader, root: snapshot.pin.root, range: range))
    }

    /// The next entry, copied out, or nil at the end of the range.
    ///
    /// - Throws: ``StateFileError/closed(path:)`` once the snapshot is
    ///   closed (its pin released, the blocks may be reused).
    public mutating func next() throws(StateFileError) -> (key: [UInt8], value: [UInt8])? {
        try snapshot.checkOpen()
        guard try box.cursor.next() else { return nil }
        return (Array(box.cursor.currentKey), Array(box.cursor.currentValue))
    }

    /// Moves to the next entry and calls `body` with borrowed buffers (no
    /// copy); returns nil at the end of the range.
    ///
    /// - Throws: see ``next()``.
    public mutating func next<Result>(
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Result
    ) throws(StateFileError) -> Result? {
        try snapshot.checkOpen()
        guard try box.cursor.next() else { return nil }
        return body(box.cursor.currentKey, box.cursor.currentValue)
    }

    /// Moves to the next entry and calls a throwing `body` with borrowed
    /// buffers (no copy); returns nil at the end of the range. Swift infers
    /// a throwing closure's error as `any Error`, so this form throws
    /// `any Error`; a `body` that does not throw selects the form that throws
    /// ``StateFileError`` only.
    ///
    /// - Throws: see ``next()``, or what `body` throws.
    public mutating func next<Result, Failure: Error>(
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws -> Result? {
        try next { key, value in Swift.Result { () throws(Failure) in try body(key, value) } }?.get()
    }
}
