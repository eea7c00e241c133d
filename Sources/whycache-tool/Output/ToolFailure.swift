import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// The tool's exit statuses, a contract with the scripts that run it.
///
/// | status | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | a negative answer: `get` found no such key, `verify` found differences |
/// | 2 | a usage error: bad arguments, options, URL, key, value or hex text |
/// | 3 | the operation failed: datastore, state file, snapshot or I/O error |
enum ToolExitStatus {
    /// `get` of a missing key; `verify` that found differences.
    static let negative: Int32 = 1
    /// The command line asked for something impossible.
    static let usage: Int32 = 2
    /// The datastore, the state file, a snapshot or the system failed.
    static let failure: Int32 = 3
}

/// Maps errors to the tool's exit statuses, with the message on stderr.
///
/// Every message comes from an error's description, and no error of the
/// library or the tool describes a password (``MySQLConfiguration`` redacts
/// it; the server's own messages name only the user).
enum ToolFailure {
    /// Runs `body`; any error it throws is printed on stderr as
    /// `whycache-tool: <message>` and becomes the exit status of
    /// ``status(for:)``. ArgumentParser's own errors pass through.
    static func guarding<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            ToolOutput.error("\(error)")
            throw ExitCode(status(for: error))
        }
    }

    /// The exit status for `error` (see ``ToolExitStatus``).
    static func status(for error: any Error) -> Int32 {
        switch error {
        case let error as CacheError: status(for: error)
        case let error as StateFileError: status(for: error)
        case let error as DatastoreError: status(for: error)
        case let error as LogRecordError: status(for: error)
        case SnapshotError.invalidArgument: ToolExitStatus.usage
        case is StoreURLError, is ToolUsageError: ToolExitStatus.usage
        default: ToolExitStatus.failure
        }
    }

    private static func status(for error: CacheError) -> Int32 {
        switch error {
        case .invalidKey, .valueTooLong, .recordTooLarge, .invalidConfiguration, .codecFailed: ToolExitStatus.usage
        case .stateFile(let error): status(for: error)
        case .datastore(let error): status(for: error)
        default: ToolExitStatus.failure
        }
    }

    private static func status(for error: StateFileError) -> Int32 {
        switch error {
        case .invalidKeyLength, .valueTooLong, .invalidOptions: ToolExitStatus.usage
        default: ToolExitStatus.failure
        }
    }

    /// An operation no record can hold is the caller's; a record that does
    /// not decode is the log's failure.
    private static func status(for error: LogRecordError) -> Int32 {
        switch error {
        case .emptyKey, .keyTooLong, .valueTooLong, .noOperations, .operationTooLarge, .invalidMaximumRecordSize: ToolExitStatus.usage
        default: ToolExitStatus.failure
        }
    }

    private static func status(for error: DatastoreError) -> Int32 {
        switch error {
        case .invalidConfiguration, .recordTooLarge: ToolExitStatus.usage
        default: ToolExitStatus.failure
        }
    }
}

/// A command line that names something impossible, found after parsing
/// (exit status 2).
struct ToolUsageError: Error, CustomStringConvertible {
    /// What is wrong and what to do instead.
    var description: String

    init(_ description: String) { self.description = description }
}

/// A command of the tool: ``execute()`` runs inside ``ToolFailure/guarding(_:)``.
protocol ToolCommand: AsyncParsableCommand {
    /// The command's work; errors become exit statuses.
    func execute() async throws
}

extension ToolCommand {
    func run() async throws {
        try await ToolFailure.guarding { try await execute() }
    }
}
