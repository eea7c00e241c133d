/// Writes one checkpoint, which stays invisible until ``publish()``.
///
/// Call ``append(_:)`` for each payload, in order, then either ``publish()``,
/// which makes the whole checkpoint visible at once, or ``abandon()``. A
/// checkpoint whose writer is abandoned, dropped or killed is never visible
/// and its storage is reclaimed by the datastore.
///
/// Calls on one writer must not overlap; after `publish` or `abandon` every
/// call fails with ``DatastoreError/invalidRequest(reason:)``.
public protocol CheckpointWriter: Sendable {
    /// The update id whose state this checkpoint holds.
    var updateID: UInt64 { get }

    /// Adds the next payload (an encoded ``LogRecord`` of sets).
    func append(_ payload: [UInt8]) async throws(DatastoreError)

    /// Makes the checkpoint durable and visible as a whole, replacing any
    /// published checkpoint at the same update id, and returns its description.
    func publish() async throws(DatastoreError) -> CheckpointInfo

    /// Discards everything written so far. Abandoning twice does nothing.
    func abandon() async
}
