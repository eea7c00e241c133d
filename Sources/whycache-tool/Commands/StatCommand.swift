import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool stat [--state PATH] [--store URL] [--json] [--hex]`
struct StatCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Print the local update id, the log's latest id, the lag, key count, subscribed prefixes, file size, free space and live readers.",
        discussion: "With --state only, the log's fields are left out; with --store only, the state's.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var text: TextOptions

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func execute() async throws {
        guard storeOptions.state != nil || storeOptions.store != nil else {
            throw ToolUsageError("stat needs --state PATH, --store URL or both")
        }
        var report = StatReport()
        if storeOptions.state != nil {
            let file = try storeOptions.openStateFile()
            report.state = StatReport.State(
                path: file.path, try file.statistics(), subscribedPrefixes: file.subscribedPrefixes.map { text.text($0) })
        }
        if let store = storeOptions.store {
            report.log = try await storeOptions.withDatastore { datastore in
                StatReport.Log(
                    store: try StoreURL(parsing: store).description,
                    latestUpdateID: try await datastore.latestUpdateID(),
                    firstRetainedUpdateID: try await datastore.firstRetainedUpdateID(),
                    latestCheckpoint: try await datastore.latestCheckpoint().map(StatReport.Checkpoint.init),
                    replicas: (datastore as? MySQLDatastore)?.replicaStatus().map(StatReport.Replica.init) ?? [])
            }
        }
        if let state = report.state, let log = report.log {
            report.lag = log.latestUpdateID > state.updateID ? log.latestUpdateID - state.updateID : 0
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            ToolOutput.line(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            report.lines.forEach(ToolOutput.line)
        }
    }
}

/// What `stat` prints: one JSON object with `state`, `log` and `lag`.
struct StatReport: Encodable {
    /// The shared-state file's side.
    struct State: Encodable {
        var path: String
        var updateID: UInt64
        var initialized: Bool
        var keyCount: Int
        /// The key prefixes the file keeps (text, or hex with `--hex`); empty: every key.
        var subscribedPrefixes: [String]
        var fileSize: Int
        var freeBytes: Int
        var retiredBytes: Int
        var liveReaders: Int
        var readerSlotsInUse: Int
        var readerSlotCount: Int
        var commitTime: String

        init(path: String, _ statistics: StateFileStatistics, subscribedPrefixes: [String]) {
            self.path = path
            self.subscribedPrefixes = subscribedPrefixes
            updateID = statistics.updateID
            initialized = statistics.isInitialized
            keyCount = statistics.keyCount
            fileSize = statistics.fileSize
            freeBytes = statistics.freeBytes
            retiredBytes = statistics.retiredBytes
            // The statistics count this process too: it pinned the state to read them.
            liveReaders = max(0, statistics.liveReaderProcesses - 1)
            readerSlotsInUse = statistics.readerSlotsInUse
            readerSlotCount = statistics.readerSlotCount
            let date = Date(timeIntervalSince1970: Double(statistics.commitTimeNanoseconds) / 1e9)
            commitTime = ISO8601DateFormatter().string(from: date)
        }
    }

    /// The log's side.
    struct Log: Encodable {
        var store: String
        var latestUpdateID: UInt64
        var firstRetainedUpdateID: UInt64
        var latestCheckpoint: Checkpoint?
        /// The store's replicas (MySQL), as the reads above found them.
        var replicas: [Replica]
    }

    /// A replica of a MySQL store.
    struct Replica: Encodable {
        var endpoint: String
        /// Whether the reads of this command went to it.
        var current: Bool
        var newestUpdateIDShown: UInt64
        /// Why reads left it, if they did.
        var problem: String?

        init(_ status: MySQLReplicaStatus) {
            endpoint = status.endpoint.description
            current = status.isCurrent
            newestUpdateIDShown = status.newestUpdateIDShown
            problem = status.failuresInARow > 0 ? status.lastProblem : nil
        }
    }

    /// A published checkpoint.
    struct Checkpoint: Encodable {
        var updateID: UInt64
        var recordCount: UInt64
        var byteCount: UInt64

        init(_ info: CheckpointInfo) {
            updateID = info.updateID
            recordCount = info.recordCount
            byteCount = info.byteCount
        }
    }

    var state: State?
    var log: Log?
    /// Records in the log that the state has not applied yet.
    var lag: UInt64?

    /// The report as aligned text lines.
    var lines: [String] {
        var lines: [String] = []
        if let state {
            lines.append("state:              \(state.path)")
            lines.append("local update id:    \(state.updateID)\(state.initialized ? "" : " (never updated from a log)")")
            lines.append("keys:               \(state.keyCount)")
            lines.append("subscribed to:      " + (state.subscribedPrefixes.isEmpty
                ? "every key" : state.subscribedPrefixes.map(JSONText.quoted).joined(separator: ", ")))
            lines.append("file size:          \(state.fileSize) bytes")
            lines.append("free:               \(state.freeBytes) bytes (+ \(state.retiredBytes) waiting for readers)")
            lines.append("live readers:       \(state.liveReaders) other processes (\(state.readerSlotsInUse) of \(state.readerSlotCount) reader slots in use)")
            lines.append("committed at:       \(state.commitTime)")
        }
        if let log {
            lines.append("log:                \(log.store)")
            lines.append("latest update id:   \(log.latestUpdateID)")
            lines.append("first retained id:  \(log.firstRetainedUpdateID)")
            if let checkpoint = log.latestCheckpoint {
                lines.append("latest checkpoint:  at update \(checkpoint.updateID) (\(checkpoint.recordCount) records, \(checkpoint.byteCount) bytes)")
            } else {
                lines.append("latest checkpoint:  none")
            }
            for replica in log.replicas {
                var line = "replica:            \(replica.endpoint), " + (replica.current ? "serving reads" : "standby")
                line += ", shows update \(replica.newestUpdateIDShown)"
                if let problem = replica.problem { line += ", left: \(problem)" }
                lines.append(line)
            }
        }
        if let lag { lines.append("lag:                \(lag) update ids") }
        return lines
    }
}
