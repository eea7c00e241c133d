/// Why ``BackgroundUpdater/waitUntilApplied(through:)`` returned without
/// the update id being applied.
public enum BackgroundUpdaterError: Error, Sendable, CustomStringConvertible {
    /// The updater stopped (graceful shutdown or cancellation of its `run`).
    case shutDown
    /// The waiting task was cancelled.
    case cancelled
    /// The cache failed (closed, or its state file failed).
    case cache(CacheError)

    public var description: String {
        switch self {
        case .shutDown: "the background updater has shut down"
        case .cancelled: "the wait was cancelled"
        case .cache(let error): error.description
        }
    }
}
