import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool rewrite-history --store URL --through ID|latest …`:
/// compacts a log with ``HistoryRewriter``.
struct RewriteHistoryCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite-history",
        abstract: "Replace the records of a log up to an update id by a checkpoint, online (one rewrite per log at a time).",
        discussion: "Prints the log's records and bytes before and after. Exit status 3 when another rewrite holds the log's maintenance lock.")

    @OptionGroup var log: LogOptions
    @OptionGroup var unusedState: UnusedStateOptions

    @Option(name: .long, help: ArgumentHelp("Required. The newest update id whose effect moves into the checkpoint, or latest.", valueName: "id|latest"))
    var through: RewriteLimit

    @Option(name: .long, help: "Leave keys that start with this prefix out of the checkpoint (repeatable). Machines that rebuild lose them.")
    var dropPrefix: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where the scratch state file is built (default: /dev/shm when present, else the temporary folder).", valueName: "dir"))
    var scratch: String?

    @Flag(name: .long, help: "Print each step as a line on stdout (for logs), also when not on a terminal.")
    var verbose = false

    @OptionGroup var text: TextOptions

    func execute() async throws {
        let prefixes = try dropPrefix.map { try text.bytes($0, naming: "prefix") }
        var keep: (@Sendable ([UInt8]) -> Bool)?
        if !prefixes.isEmpty {
            keep = { (key: [UInt8]) -> Bool in !prefixes.contains { (prefix: [UInt8]) in key.starts(with: prefix) } }
        }
        let filter = keep
        let progress = ProgressBar(label: "rewrite-history", unit: "steps")
        let report = try await log.connection().withDatastore { datastore -> HistoryRewriteReport? in
            let limit: UInt64
            switch through {
            case .latest:
                limit = try await datastore.latestUpdateID()
                // An empty log has no history to rewrite; for a cron job
                // that is success, not an error.
                guard limit > 0 else { return nil }
            case .id(let id): limit = id
            }
            let rewriter = HistoryRewriter(datastore: datastore, scratchDirectory: scratch ?? scratchFolder())
            return try await rewriter.rewrite(through: limit, keeping: filter) { step in
                progress.begin("rewrite-history: " + Self.describe(step))
                if verbose { ToolOutput.line("rewrite-history: " + Self.describe(step)) }
            }
        }
        progress.finish(done: 0)
        guard let report else {
            ToolOutput.line("the log is empty: nothing to rewrite")
            return
        }
        let checkpoint = report.checkpoint.map { "checkpoint at update \($0.updateID): \($0.recordCount) records, \($0.byteCount) bytes" } ?? "no checkpoint"
        ToolOutput.line("log before: \(report.recordsBefore) records, \(report.bytesBefore) bytes")
        ToolOutput.line("log after:  \(report.recordsAfter) records, \(report.bytesAfter) bytes (with the checkpoint)")
        ToolOutput.line("\(checkpoint); keys dropped by the filter: \(report.keysDropped)")
    }

    private static func describe(_ step: HistoryRewriteProgress) -> String {
        switch step {
        case .measuring: "measuring the records that stay"
        case .building(let limit): "building the state through update \(limit) in a scratch file"
        case .writingCheckpoint(let id): "writing the checkpoint at update \(id)"
        case .removingRecords(let id): "removing the records through update \(id) and older checkpoints"
        case .finished: "done"
        }
    }
}

/// The value of `rewrite-history --through`: an update id or `latest`.
enum RewriteLimit: ExpressibleByArgument {
    /// The log's newest id when the rewrite starts.
    case latest
    /// This id.
    case id(UInt64)

    init?(argument: String) {
        if argument == "latest" {
            self = .latest
        } else if let id = UInt64(argument) {
            self = .id(id)
        } else {
            return nil
        }
    }
}
