/// One record of the change log together with the update id the log assigned it.
public struct LogEntry: Sendable, Hashable {
    /// The record's position in the log: ids start at 1 and strictly increase.
    public var updateID: UInt64

    /// The encoded record (see ``LogRecord``). Datastores treat it as opaque bytes.
    public var payload: [UInt8]

    /// Creates an entry.
    public init(updateID: UInt64, payload: [UInt8]) {
        self.updateID = updateID
        self.payload = payload
    }
}
