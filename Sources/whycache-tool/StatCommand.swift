import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool stat --state PATH [--json]`
struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Print the update id, key count, size, free space and readers of a state file.")

    @Option(name: .long, help: "The shared-state file.")
    var state: String

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let statistics = try ToolFailure.mapState { () throws(StateFileError) in
            var options = SharedStateFile.Options()
            options.createIfMissing = false
            return try SharedStateFile.open(at: state, options: options).statistics()
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(statistics), as: UTF8.self))
            return
        }
        print("update id:      \(statistics.updateID)")
        print("keys:           \(statistics.keyCount)")
        print("file size:      \(statistics.fileSize) bytes")
        print("free:           \(statistics.freeBytes) bytes")
        print("retired:        \(statistics.retiredBytes) bytes (waiting for readers)")
        print("reader slots:   \(statistics.readerSlotsInUse) of \(statistics.readerSlotCount) in use")
    }
}

/// `whycache-tool verify --state PATH`
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the structure of a state file; exit 1 if it is damaged.")

    @Option(name: .long, help: "The shared-state file.")
    var state: String

    func run() throws {
        let count = try ToolFailure.mapState { () throws(StateFileError) in
            var options = SharedStateFile.Options()
            options.createIfMissing = false
            return try SharedStateFile.open(at: state, options: options).verify()
        }
        print("ok: \(count) keys")
    }
}

/// Maps library errors to the tool's exit codes, with the message on stderr.
enum ToolFailure {
    static func mapState<T>(_ body: () throws(StateFileError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            FileHandle.standardError.write(Data("whycache-tool: \(error)\n".utf8))
            switch error {
            case .corrupted, .truncated, .notAStateFile, .unsupportedFormatVersion, .notDurableAcrossRestart:
                throw ExitCode(1)
            default:
                throw ExitCode(3)
            }
        }
    }

    /// Runs `body`; a ``CacheError`` is printed on stderr and ends the tool
    /// with exit code 1 for damaged data, 2 when another process holds the
    /// log's maintenance lock, 3 otherwise.
    static func mapCache<T>(_ body: () async throws(CacheError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            FileHandle.standardError.write(Data("whycache-tool: \(error)\n".utf8))
            switch error {
            case .corruptRecord, .datastore(.corruptRecord), .datastore(.notADatastore): throw ExitCode(1)
            case .datastore(.maintenanceLockHeld): throw ExitCode(2)
            default: throw ExitCode(3)
            }
        }
    }
}
