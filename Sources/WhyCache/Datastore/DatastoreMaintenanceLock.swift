/// Proof that its holder is the only one rewriting a log's history.
///
/// Obtained from ``Datastore/acquireMaintenanceLock()``. The lock is released by
/// ``release()``, when the value is dropped, or when the holding process dies
/// — a crashed maintenance job never blocks the next one.
public protocol DatastoreMaintenanceLock: Sendable {
    /// Releases the lock. Releasing twice does nothing.
    func release() async
}
