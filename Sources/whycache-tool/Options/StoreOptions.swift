import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `--store`, `--password-file` and `--state`, each optional: the options
/// of `stat` (which reports on whichever of the two it is given) and of the
/// benchmarks.
///
/// The other commands take the groups that say what they need:
/// ``LogOptions`` and ``StateOptions`` (required), ``OptionalStateOptions``,
/// and ``UnusedLogOptions``/``UnusedStateOptions`` (accepted, hidden).
/// A missing option that a benchmark needs is a usage error (exit status 2).
struct StoreOptions: ParsableArguments {
    /// The environment variable read when no `--password-file` is given.
    static let passwordVariable = LogConnection.passwordVariable

    @Option(name: .long, help: ArgumentHelp(
        "The log: file:///absolute/dir or mysql://USER@HOST[:PORT]/DATABASE?table=NAME (also tls=, tls-ca=, socket=, replica=, replica-lag=, connect-timeout=).",
        valueName: "url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the MySQL password (a trailing line break is ignored); default: $\(passwordVariable).",
        valueName: "path"))
    var passwordFile: String?

    @Option(name: .long, help: ArgumentHelp("The shared-state file.", valueName: "path"))
    var state: String?

    /// Refuses a malformed `--store` before any command runs, so that a URL
    /// with a password is never accepted anywhere (the message does not
    /// repeat the password).
    func validate() throws {
        if let store {
            do { _ = try StoreURL(parsing: store) } catch { throw ValidationError(error.description) }
        }
    }

    /// The parsed `--store`.
    ///
    /// - Throws: ``ToolUsageError`` when it is missing, ``StoreURLError`` when it is malformed.
    func requireStore() throws -> StoreURL {
        guard let store else { throw ToolUsageError("this command needs --store URL") }
        return try StoreURL(parsing: store)
    }

    /// `--state`.
    ///
    /// - Throws: ``ToolUsageError`` when it is missing.
    func requireState() throws -> String {
        guard let state, !state.isEmpty else { throw ToolUsageError("this command needs --state PATH") }
        return state
    }

    /// Runs `body` with the datastore of `--store`, closed afterwards
    /// (``LogConnection/withDatastore(creating:defaultTable:_:)``).
    func withDatastore<T>(
        creating: Bool = false, defaultTable: String = StoreURL.defaultTable, _ body: (any Datastore) async throws -> T
    ) async throws -> T {
        try await LogConnection(store: try requireStore(), passwordFile: passwordFile)
            .withDatastore(creating: creating, defaultTable: defaultTable, body)
    }

    /// Opens the existing state file `--state` for reading.
    ///
    /// - Throws: ``ToolUsageError`` when `--state` is missing,
    ///   ``StateFileError`` when the file is missing or unusable.
    func openStateFile() throws -> SharedStateFile {
        try Self.openStateFile(at: try requireState())
    }

    /// Opens the existing state file at `path` for reading, as the commands
    /// that read `--state` do (never creating one).
    ///
    /// - Throws: ``StateFileError`` when the file is missing or unusable.
    static func openStateFile(at path: String) throws(StateFileError) -> SharedStateFile {
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        return try SharedStateFile.open(at: path, options: options)
    }

    /// The MySQL password (``LogConnection/password(file:)``).
    func password() throws -> String {
        try LogConnection.password(file: passwordFile)
    }
}
