/// A change log: the ground truth that every machine replays into its shared state.
///
/// A datastore stores opaque payloads (encoded ``LogRecord``s) under update
/// ids, and checkpoints that let history be compacted. ``FileDatastore`` is the
/// embedded implementation; others (such as a MySQL one) implement the same
/// contract and run the same conformance tests.
///
/// ## The log
/// - Update ids are `UInt64`, start at 1 and strictly increase in append order.
///   `0` means "before the first record".
/// - **Visibility.** When a read returns a record with id `n`, every record
///   with an id below `n` that will ever exist (and was not removed) is already
///   readable. A reader that has applied everything through `n` may therefore
///   continue with `records(after: n)` and never miss a record.
/// - **Compaction.** A datastore may delete a record that changes exactly
///   one key once a later record that changes only the same key exists (the
///   later one supersedes it), which leaves a hole in the ids. Nothing else
///   may be missing between two ids it returns. A consumer that reads a hole
///   reaches the exact state of the log only once it has also applied the
///   records after it, through the end of the log it read
///   (``SharedCache/update(through:)`` commits only there).
/// - **History.** ``removeRecords(through:)`` deletes old records once a
///   checkpoint holds their effect. Reading from a position whose successor
///   was removed throws ``DatastoreError/historyRewritten(firstRetainedUpdateID:)``
///   and never silently skips records.
///
/// ## Checkpoints
/// A checkpoint is the complete dataset as of update id `L`, stored as a
/// sequence of payloads. It is written through a ``CheckpointWriter`` and
/// becomes visible only when published, all at once. A reader at a position
/// older than ``firstRetainedUpdateID()`` - 1 rebuilds from the latest
/// checkpoint and then reads `records(after: L)`.
///
/// ## Concurrency
/// Every method may be called from many tasks and many processes at once.
/// Blocking work happens off Swift's cooperative thread pool.
public protocol Datastore: Sendable {
    /// Creates the datastore's storage if it does not exist yet; does nothing
    /// when it does. Every other method requires the storage to exist.
    func createIfMissing() async throws(DatastoreError)

    /// The id of the newest record, or `0` when nothing was ever appended.
    ///
    /// Removing records does not lower it: after history was removed through
    /// `L`, it is at least `L`.
    func latestUpdateID() async throws(DatastoreError) -> UInt64

    /// The oldest id that can still be read: `records(after: p)` works for
    /// every `p >= firstRetainedUpdateID() - 1`. It is `1` until records are removed.
    func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64

    /// One page of the records with ids in `(after, through]`, in id order
    /// (`through == nil` means "up to the newest").
    ///
    /// An empty result means no such record exists yet; a datastore that
    /// reads from copies that lag (replicas) answers a read through an id
    /// from a copy that holds that id, so an empty page through an id the
    /// log has reached means that no record of the range is left (a
    /// compacting datastore deleted them), never that a copy has not seen
    /// them yet. The page respects
    /// `limits` (see ``DatastorePageLimits``). Use ``records(after:through:limits:)``
    /// to stream a whole range.
    ///
    /// - Throws: ``DatastoreError/historyRewritten(firstRetainedUpdateID:)`` when
    ///   the record `after + 1` was removed.
    func readRecords(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> [LogEntry]

    /// One page like ``readRecords(after:through:limits:)``, together with
    /// the newest id of the log and whether the page reaches the end of the
    /// range, when the datastore learns them with the page at no extra cost.
    ///
    /// ``SharedCache`` reads the log through this method: a datastore whose
    /// reads are round trips (MySQL) answers an idle poll, and a poll that
    /// finds a few new records, with one request. The default implementation
    /// calls ``readRecords(after:through:limits:)`` and knows neither; a
    /// datastore that wraps another (to count, log or control calls) should
    /// forward this method too, or every poll through it costs a second
    /// request for the log's newest id.
    ///
    /// - Throws: as ``readRecords(after:through:limits:)``.
    func readPage(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage

    /// Appends `payloads` as consecutive records and returns their ids, in order.
    ///
    /// The records become durable (as the datastore's configuration defines)
    /// before this returns; a datastore that can writes them atomically, all or none.
    ///
    /// - Throws: ``DatastoreError/recordTooLarge(size:maximum:)`` before writing
    ///   anything when a payload is larger than the datastore accepts
    ///   (never smaller than ``/WhyCacheSupport/WhyCacheLimits/maximumRecordSize``).
    func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64]

    /// The newest published checkpoint, or `nil` when there is none.
    func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo?

    /// Starts writing a checkpoint of the state as of `updateID`, which must
    /// be between 1 and ``latestUpdateID()``.
    func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter

    /// One page of the payloads of `checkpoint`, starting at `position`
    /// (``CheckpointPosition/start`` for the first page), and the position of
    /// the page after it, or `nil` once the checkpoint is fully read.
    ///
    /// - Throws: ``DatastoreError/checkpointNotFound(updateID:)`` when the
    ///   checkpoint was removed.
    func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?)

    /// Removes the published checkpoints older than `updateID`.
    func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError)

    /// Removes the records with ids up to and including `updateID`; afterwards
    /// ``firstRetainedUpdateID()`` is `updateID + 1`. Removing through an id at
    /// or below an earlier removal changes nothing visible; it finishes
    /// deleting the storage of that removal if a crash interrupted it.
    ///
    /// - Throws: ``DatastoreError/noCheckpointCovers(updateID:)`` unless a
    ///   published checkpoint at `updateID` or later exists, and
    ///   ``DatastoreError/invalidRequest(reason:)`` when `updateID` is beyond
    ///   ``latestUpdateID()``. Nothing is removed then.
    func removeRecords(through updateID: UInt64) async throws(DatastoreError)

    /// Takes the log's exclusive maintenance lock, which whoever rewrites
    /// history holds for the whole rewrite. Does not wait.
    ///
    /// - Throws: ``DatastoreError/maintenanceLockHeld`` when anyone (in this
    ///   process or another) holds it.
    func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock
}

extension Datastore {
    /// One page from ``readRecords(after:through:limits:)``, without
    /// knowledge of the log's end.
    public func readPage(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage {
        LogPage(entries: try await readRecords(after: after, through: through, limits: limits))
    }

    /// Appends one payload as a record and returns its update id.
    ///
    /// - Throws: see ``append(contentsOf:)``.
    public func append(_ payload: [UInt8]) async throws(DatastoreError) -> UInt64 {
        let ids = try await append(contentsOf: [payload])
        guard ids.count == 1, let id = ids.first else {
            throw .contractViolated(reason: "the datastore assigned \(ids.count) ids to one record")
        }
        return id
    }

    /// Streams the records with ids in `(after, through]`, in id order, one
    /// page of at most `limits` at a time.
    ///
    /// With `through == nil` the sequence ends at the newest record that exists
    /// when the last page is read. Iterating throws
    /// ``DatastoreError/historyRewritten(firstRetainedUpdateID:)`` if the next
    /// record to read was removed.
    public func records(
        after: UInt64, through: UInt64? = nil, limits: DatastorePageLimits = .default
    ) -> LogEntrySequence {
        LogEntrySequence(start: after) { position throws(DatastoreError) in
            if let through, position >= through { return ([], nil) }
            let page = try await self.readRecords(after: position, through: through, limits: limits)
            return (page, page.last?.updateID)
        }
    }

    /// Streams the payloads of `checkpoint`, in order, one page at a time.
    public func checkpointRecords(
        _ checkpoint: CheckpointInfo, limits: DatastorePageLimits = .default
    ) -> CheckpointPayloadSequence {
        CheckpointPayloadSequence(start: .start) { position throws(DatastoreError) in
            let page = try await self.readCheckpoint(checkpoint, from: position, limits: limits)
            return (page.payloads, page.next)
        }
    }
}
