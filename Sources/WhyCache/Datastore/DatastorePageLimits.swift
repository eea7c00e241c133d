/// How much a datastore returns from one paged read, which bounds the memory a
/// streaming reader holds at a time.
///
/// A page holds at most ``maximumCount`` elements and stops growing once its
/// payloads reach ``maximumBytes``. A page is never empty while elements
/// remain, so a single element larger than ``maximumBytes`` still comes back
/// (alone).
public struct DatastorePageLimits: Sendable, Hashable {
    /// The most elements one page holds; at least 1.
    public var maximumCount: Int

    /// The payload bytes after which a page stops growing; at least 1.
    public var maximumBytes: Int

    /// The limits ``Datastore/records(after:through:limits:)`` uses unless told
    /// otherwise: 4,096 records or 8 MiB.
    public static let `default` = DatastorePageLimits(maximumCount: 4_096, maximumBytes: 8 << 20)

    /// Creates limits; values below 1 are raised to 1.
    public init(maximumCount: Int, maximumBytes: Int) {
        self.maximumCount = max(1, maximumCount)
        self.maximumBytes = max(1, maximumBytes)
    }
}
