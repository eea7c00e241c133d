import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool mysql …`: the tables of a MySQL or MariaDB datastore.
struct MySQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mysql",
        abstract: "Create and inspect the tables of a MySQL/MariaDB datastore (password from --password-file or \(MySQLConnectionOptions.passwordVariable)).",
        subcommands: [MySQLSchemaCommand.self, MySQLCreateSchemaCommand.self, MySQLStatCommand.self])
}

/// `whycache-tool mysql schema [--table T]`
struct MySQLSchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Print the SQL script that creates the tables of a log (no server needed).")

    @Option(name: .long, help: "The log table; the other tables are named after it.")
    var table = "whycache_log"

    /// Prints the script for `--table`.
    func run() async throws {
        let identifier = try await ToolFailure.mapDatastore { () throws(DatastoreError) in try MySQLIdentifier(table) }
        print(MySQLDatastore.schemaScript(table: identifier), terminator: "")
    }
}

/// `whycache-tool mysql create-schema <connection options>`
struct MySQLCreateSchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-schema",
        abstract: "Create the tables of a log where missing (needs the CREATE privilege) and check the format of existing ones.")

    @OptionGroup var connection: MySQLConnectionOptions

    /// Creates the tables and says whether they existed.
    func run() async throws {
        let message = try await ToolFailure.mapDatastore { () async throws(DatastoreError) -> String in
            let configuration = try connection.configuration()
            let datastore = try MySQLDatastore(configuration: configuration)
            let names = MySQLTableNaming.tables(of: configuration.table.name).joined(separator: ", ")
            let existing: UInt64?
            do throws(DatastoreError) {
                existing = try await datastore.latestUpdateID()
            } catch {
                guard case .notADatastore = error else { throw error }
                existing = nil
            }
            try await datastore.createIfMissing()
            guard let existing else {
                return "created the tables \(names) in \(configuration.location); the log is empty"
            }
            return "the log already existed in \(configuration.location) (latest update id \(existing)); "
                + "created whichever of \(names) were missing and checked the format version"
        }
        print(message)
    }
}

/// `whycache-tool mysql stat <connection options> [--json]`
struct MySQLStatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Print the latest update id, the first retained id and the latest checkpoint of a log.")

    @OptionGroup var connection: MySQLConnectionOptions

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    /// Reads the log's ids and latest checkpoint and prints them.
    func run() async throws {
        let statistics = try await ToolFailure.mapDatastore { () async throws(DatastoreError) -> MySQLLogStatistics in
            let configuration = try connection.configuration()
            let datastore = try MySQLDatastore(configuration: configuration)
            return MySQLLogStatistics(
                location: configuration.location,
                latestUpdateID: try await datastore.latestUpdateID(),
                firstRetainedUpdateID: try await datastore.firstRetainedUpdateID(),
                latestCheckpoint: try await datastore.latestCheckpoint().map(MySQLLogStatistics.Checkpoint.init))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(statistics), as: UTF8.self))
            return
        }
        print("log:               \(statistics.location)")
        print("latest update id:  \(statistics.latestUpdateID)")
        print("first retained id: \(statistics.firstRetainedUpdateID)")
        if let checkpoint = statistics.latestCheckpoint {
            print("latest checkpoint: at update \(checkpoint.updateID) (\(checkpoint.recordCount) records, \(checkpoint.byteCount) bytes)")
        } else {
            print("latest checkpoint: none")
        }
    }
}

/// What `mysql stat` prints.
struct MySQLLogStatistics: Encodable {
    /// A published checkpoint.
    struct Checkpoint: Encodable {
        /// The update id whose state it holds.
        var updateID: UInt64
        /// Its payloads.
        var recordCount: UInt64
        /// The size of its payloads, in bytes.
        var byteCount: UInt64

        /// The fields of `info`.
        init(_ info: CheckpointInfo) {
            updateID = info.updateID
            recordCount = info.recordCount
            byteCount = info.byteCount
        }
    }

    /// The server, database and log table.
    var location: String
    /// The id of the newest record (0 for an empty log).
    var latestUpdateID: UInt64
    /// The oldest id that can still be read.
    var firstRetainedUpdateID: UInt64
    /// The newest published checkpoint, if any.
    var latestCheckpoint: Checkpoint?
}

/// The names of the four tables of a log, as `docs/FORMAT.md` §4 and the
/// schema script give them.
enum MySQLTableNaming {
    /// The log table and the three tables named after it.
    static func tables(of table: String) -> [String] {
        ["", "_meta", "_checkpoints", "_checkpoint_payloads"].map { table + $0 }
    }
}
