import WhyCache
import Glibc
import Dispatch

/// A command of the test helper: receives the arguments after its name.
typealias HelperCommandBody = @Sendable ([String]) throws -> Void

enum HelperCommand {
    /// Every command, by name. Each `*Commands.swift` file contributes one table.
    static let all: [String: HelperCommandBody] = StateCommands.table
        .merging(DatastoreCommands.table) { a, _ in a }
        .merging(CacheCommands.table) { a, _ in a }
        .merging(UpdaterCommands.table) { a, _ in a }

    /// A usage error raised by a command that was given bad arguments.
    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses `arguments[index]` as an integer or throws a usage error.
    static func integer<T: FixedWidthInteger>(_ arguments: [String], _ index: Int, _ what: String) throws -> T {
        guard index < arguments.count, let value = T(arguments[index]) else {
            throw UsageError(description: "argument \(index + 1) (\(what)) must be an integer")
        }
        return value
    }

    /// `arguments[index]` or a usage error.
    static func string(_ arguments: [String], _ index: Int, _ what: String) throws -> String {
        guard index < arguments.count else {
            throw UsageError(description: "missing argument \(index + 1) (\(what))")
        }
        return arguments[index]
    }

    /// The unsigned integer written in the file at `path` (surrounding white
    /// space ignored), or nil when the file is missing, empty or holds
    /// something else.
    static func integer(inFileAt path: String) -> UInt64? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        return UInt64(text.filter { !$0.isWhitespace })
    }

    /// Runs async `body` to completion from this synchronous command.
    static func waitFor(_ body: @escaping @Sendable () async throws -> Void) throws {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await body()
            } catch {
                outcome.failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.failure.withLock({ $0 }) { throw error }
    }

    /// Carries an error out of the task in ``waitFor(_:)``.
    private final class Outcome: Sendable {
        let failure = Locked<(any Error)?>(nil)
    }

    /// Prints one line to stdout and flushes it at once, so that a test reading
    /// the pipe sees it even if this process is killed right after.
    static func say(_ line: String) {
        writeAll(STDOUT_FILENO, line + "\n")
    }

    /// Prints one line to stderr.
    static func complain(_ line: String) {
        writeAll(STDERR_FILENO, line + "\n")
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
