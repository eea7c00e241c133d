/// Proof that its holder is the only one rewriting a log's history.
///
/// Obtained from ``Datastore/acquireMaintenanceLock()``. The holder releases it
/// with ``release()``. The lock is also released when the holding process
/// dies — a crashed maintenance job never blocks the next one — and, as a
/// safety net, some time after the last reference to it is dropped.
public protocol DatastoreMaintenanceLock: Sendable {
    /// Releases the lock. Releasing twice does nothing.
    func release() async
}
