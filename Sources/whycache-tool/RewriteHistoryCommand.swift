import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool rewrite-history file|mysql …`: compacts a log with
/// ``HistoryRewriter``, printing each step.
struct RewriteHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite-history",
        abstract: "Replace the records of a log up to an update id by a checkpoint, online (one rewrite per log at a time).",
        subcommands: [RewriteFileHistoryCommand.self, RewriteMySQLHistoryCommand.self])
}

/// The options every rewrite takes, whatever the datastore.
struct RewriteOptions: ParsableArguments {
    @Option(name: .long, help: "The newest update id whose effect moves into the checkpoint (default: the newest id).")
    var through: UInt64?

    @Option(name: .long, help: "Leave keys that start with this prefix out of the checkpoint (repeatable). Machines that rebuild lose them.")
    var dropPrefix: [String] = []

    @Option(name: .long, help: "Where the scratch state file is built (default: /dev/shm when present, else the temporary folder).")
    var scratch: String?

    /// Runs the rewrite on `datastore`, printing progress and the report.
    func run(on datastore: any Datastore) async throws {
        let prefixes: [[UInt8]] = dropPrefix.map { Array($0.utf8) }
        var filter: (@Sendable ([UInt8]) -> Bool)?
        if !prefixes.isEmpty {
            filter = { (key: [UInt8]) -> Bool in !prefixes.contains { prefix in key.starts(with: prefix) } }
        }
        let keep = filter
        let report = try await ToolFailure.mapCache { () async throws(CacheError) -> HistoryRewriteReport in
            let limit: UInt64
            if let through {
                limit = through
            } else {
                do throws(DatastoreError) {
                    limit = try await datastore.latestUpdateID()
                } catch {
                    throw .datastore(error)
                }
            }
            let rewriter = HistoryRewriter(datastore: datastore, scratchDirectory: scratch ?? scratchFolder())
            return try await rewriter.rewrite(through: limit, keeping: keep) { step in
                // Written at once, unbuffered, so that progress shows also through a pipe.
                FileHandle.standardOutput.write(Data("rewrite-history: \(Self.describe(step))\n".utf8))
            }
        }
        let checkpoint = report.checkpoint.map { "checkpoint at update \($0.updateID): \($0.recordCount) records, \($0.byteCount) bytes" } ?? "no checkpoint"
        print("log before: \(report.recordsBefore) records, \(report.bytesBefore) bytes")
        print("log after:  \(report.recordsAfter) records, \(report.bytesAfter) bytes (with the checkpoint)")
        print("\(checkpoint); keys dropped by the filter: \(report.keysDropped)")
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

/// `whycache-tool rewrite-history file --log DIR …`
struct RewriteFileHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "file", abstract: "Rewrite the history of a file datastore.")

    @Option(name: .long, help: "The file datastore's directory.")
    var log: String

    @OptionGroup var options: RewriteOptions

    func run() async throws {
        let datastore = try await ToolFailure.mapDatastore { () async throws(DatastoreError) in try await FileDatastore.open(directory: log) }
        try await options.run(on: datastore)
    }
}

/// `whycache-tool rewrite-history mysql <connection options> …`
struct RewriteMySQLHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mysql", abstract: "Rewrite the history of a MySQL/MariaDB datastore.")

    @OptionGroup var connection: MySQLConnectionOptions
    @OptionGroup var options: RewriteOptions

    func run() async throws {
        let datastore = try await ToolFailure.mapDatastore { () throws(DatastoreError) in
            try MySQLDatastore(configuration: try connection.configuration())
        }
        try await options.run(on: datastore)
        await datastore.close()
    }
}
