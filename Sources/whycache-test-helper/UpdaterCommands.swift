import Synchronization
import Glibc
import Dispatch
import Logging
import WhyCache

/// Commands that run a ``BackgroundUpdater`` in a separate process, for the
/// tests of the poller election: many such processes follow one state file,
/// and the test counts which of them read the datastore.
enum UpdaterCommands {
    static let table: [String: HelperCommandBody] = [
        "cache-follow": follow
    ]

    /// `cache-follow STORE STATE INTERVALMS`: runs a ``BackgroundUpdater``
    /// (one poller per machine, a round every INTERVALMS milliseconds) for a
    /// cache on STATE over the datastore STORE, which it wraps to count the
    /// calls the updater makes; and iterates a change stream whose poll
    /// interval is an hour, so that only this process can wake it.
    ///
    /// The updater's warnings (a failed round, a lease it could not check)
    /// are printed as `updater-error MESSAGE METADATA`.
    ///
    /// Prints `round N poller|follower CALLS` after round N (from 1) when
    /// the updater's role differs from the round before (CALLS: the
    /// datastore calls the updater made so far), and `changed ID` for each
    /// change the stream delivers (`stream-error …` for a read that failed,
    /// after which the stream goes on). Reads commands from stdin, one per line:
    /// `wait ID` prints `applied ID` once ``BackgroundUpdater/waitUntilApplied(through:)``
    /// returns; `status TAG` prints `status TAG ROUNDS poller|follower CALLS`;
    /// `quit` (or the end of the input) ends the command.
    static func follow(_ arguments: [String]) throws {
        let storeSpec = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let interval: Int64 = try HelperCommand.integer(arguments, 2, "interval in milliseconds")
        try HelperCommand.waitFor {
            let store = CountingDatastore(try CacheCommands.openStore(storeSpec))
            try await store.createIfMissing()
            let cache = try SharedCache(statePath: state, datastore: store)
            let rounds = RoundLog()
            let updater = BackgroundUpdater(
                cache: cache, configuration: .init(interval: .milliseconds(interval)),
                logger: Logger(label: "cache-follow") { _ in WarningLines() }
            ) { report in
                let (number, changed) = rounds.record(polled: report.polled)
                if changed {
                    HelperCommand.say("round \(number) \(report.polled ? "poller" : "follower") \(store.counted)")
                }
            }
            let changes = try cache.changes(pollInterval: .seconds(3_600))
            let streaming = Task {
                // A read that fails (a server slow to accept a connection)
                // ends one iteration; the stream goes on from where it stopped.
                var iterator = changes.makeAsyncIterator()
                while !Task.isCancelled {
                    do throws(CacheError) {
                        guard let event = try await iterator.next() else { return }
                        switch event {
                        case .changed(let change): HelperCommand.say("changed \(change.updateID)")
                        case .historyRewritten: HelperCommand.say("rewritten")
                        }
                    } catch {
                        HelperCommand.say("stream-error \(error)")
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            let updating = Task {
                await CountingDatastore.$counts.withValue(true) { await updater.run() }
            }
            var waits: [Task<Void, any Error>] = []
            for await line in standardInputLines() {
                let words = line.split(separator: " ").map(String.init)
                if words.first == "quit" { break }
                switch words.first {
                case "wait":
                    let id: UInt64 = try HelperCommand.integer(words, 1, "update id")
                    waits.append(Task {
                        do {
                            try await updater.waitUntilApplied(through: id)
                            HelperCommand.say("applied \(id)")
                        } catch {
                            HelperCommand.say("wait-error \(id) \(error)")
                        }
                    })
                case "status":
                    let tag = try HelperCommand.string(words, 1, "tag")
                    let (number, polled) = rounds.current
                    HelperCommand.say("status \(tag) \(number) \(polled ? "poller" : "follower") \(store.counted)")
                default:
                    throw HelperCommand.UsageError(description: "unknown command \(line)")
                }
            }
            updating.cancel()
            await updating.value
            streaming.cancel()
            for wait in waits { wait.cancel() }
            cache.close()
        }
    }

    /// The lines of stdin, read on a thread of their own (a blocking read
    /// must not hold a thread of the cooperative pool).
    private static func standardInputLines() -> AsyncStream<String> {
        let (lines, continuation) = AsyncStream<String>.makeStream()
        DispatchQueue(label: "whycache-test-helper.stdin").async {
            while let line = readLine() { continuation.yield(line) }
            continuation.finish()
        }
        return lines
    }

    /// The rounds of an updater: how many ended, and the role of the last.
    private final class RoundLog: Sendable {
        private let state = Locked((rounds: 0, polled: false))

        /// Records a round; returns its number and whether its role differs
        /// from the round before (always true for the first).
        func record(polled: Bool) -> (number: Int, changed: Bool) {
            state.withLock { state in
                defer { state = (state.rounds + 1, polled) }
                return (state.rounds + 1, state.rounds == 0 || state.polled != polled)
            }
        }

        /// The rounds ended so far and the role of the last.
        var current: (rounds: Int, polled: Bool) {
            state.withLock { $0 }
        }
    }
}

/// A datastore that forwards every call to another and counts the calls
/// made from tasks that set ``counts`` (the updater's, in `cache-follow`),
/// so that a test can tell which process reads the log on the interval.
final class CountingDatastore: Datastore {
    /// Whether calls of the current task are counted.
    @TaskLocal static var counts = false

    private let base: any Datastore
    private let calls = Atomic<Int>(0)

    init(_ base: any Datastore) { self.base = base }

    /// The calls counted so far.
    var counted: Int { calls.load(ordering: .relaxed) }

    private func count() {
        if Self.counts { calls.add(1, ordering: .relaxed) }
    }

    func createIfMissing() async throws(DatastoreError) {
        count()
        try await base.createIfMissing()
    }

    func latestUpdateID() async throws(DatastoreError) -> UInt64 {
        count()
        return try await base.latestUpdateID()
    }

    func firstRetainedUpdateID() async throws(DatastoreError) -> UInt64 {
        count()
        return try await base.firstRetainedUpdateID()
    }

    func readRecords(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> [LogEntry] {
        count()
        return try await base.readRecords(after: after, through: through, limits: limits)
    }

    func readPage(after: UInt64, through: UInt64?, limits: DatastorePageLimits) async throws(DatastoreError) -> LogPage {
        count()
        return try await base.readPage(after: after, through: through, limits: limits)
    }

    func append(contentsOf payloads: [[UInt8]]) async throws(DatastoreError) -> [UInt64] {
        count()
        return try await base.append(contentsOf: payloads)
    }

    func latestCheckpoint() async throws(DatastoreError) -> CheckpointInfo? {
        count()
        return try await base.latestCheckpoint()
    }

    func beginCheckpoint(at updateID: UInt64) async throws(DatastoreError) -> any CheckpointWriter {
        count()
        return try await base.beginCheckpoint(at: updateID)
    }

    func readCheckpoint(
        _ checkpoint: CheckpointInfo, from position: CheckpointPosition, limits: DatastorePageLimits
    ) async throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        count()
        return try await base.readCheckpoint(checkpoint, from: position, limits: limits)
    }

    func removeCheckpoints(before updateID: UInt64) async throws(DatastoreError) {
        count()
        try await base.removeCheckpoints(before: updateID)
    }

    func removeRecords(through updateID: UInt64) async throws(DatastoreError) {
        count()
        try await base.removeRecords(through: updateID)
    }

    func acquireMaintenanceLock() async throws(DatastoreError) -> any DatastoreMaintenanceLock {
        count()
        return try await base.acquireMaintenanceLock()
    }
}

/// A log handler that prints messages of level warning and above as
/// `updater-error MESSAGE METADATA` lines on stdout, where the tests read
/// them with the rest of the process's output.
private struct WarningLines: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        let rendered = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        HelperCommand.say("updater-error \(event.message) \(rendered)")
    }
}
