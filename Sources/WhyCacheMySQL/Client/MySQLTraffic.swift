import Synchronization

/// Counts what the connections to one server sent and received: the
/// requests (round trips: a statement, or a multi-statement query), the
/// statements executed (what the server counts in its `Questions` status
/// variable, prepares excluded) and the bytes of the result values read.
///
/// One counter per server a datastore talks to (the primary, each replica);
/// every connection to that server adds to it, from its own queue.
final class MySQLTraffic: Sendable {
    private let requestCount = Atomic<UInt64>(0)
    private let statementCount = Atomic<UInt64>(0)
    private let resultByteCount = Atomic<UInt64>(0)

    init() {}

    /// Counts one request sent (a round trip to the server).
    func countRequest() {
        requestCount.add(1, ordering: .relaxed)
    }

    /// Counts one statement executed.
    func countStatement() {
        statementCount.add(1, ordering: .relaxed)
    }

    /// Counts `bytes` bytes of result values read.
    func countResultBytes(_ bytes: Int) {
        resultByteCount.add(UInt64(bytes), ordering: .relaxed)
    }

    /// The requests sent so far.
    var requests: UInt64 { requestCount.load(ordering: .relaxed) }

    /// The statements executed so far.
    var statements: UInt64 { statementCount.load(ordering: .relaxed) }

    /// The bytes of result values read so far.
    var resultBytes: UInt64 { resultByteCount.load(ordering: .relaxed) }
}
