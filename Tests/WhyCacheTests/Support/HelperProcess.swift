import Foundation
import Testing
@testable import WhyCache

/// A running `whycache-test-helper` process: a real, separate process that a
/// test starts, reads from, waits for, or kills.
final class HelperProcess: @unchecked Sendable {
    /// The path of the helper executable, next to the test bundle in the build folder.
    static let executableURL: URL = builtExecutable("whycache-test-helper")

    /// The path of the executable product `name` of this package, next to the
    /// test bundle in the build folder.
    static func builtExecutable(_ name: String) -> URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // The test binary is either `.build/<config>/WhyCachePackageTests.xctest`
        // (a file on Linux) or a bundle directory further down on macOS.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent(name)
    }

    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()
    /// The pipe to the process's stdin, when started with `commands`.
    private let commands: Pipe?

    /// Starts `whycache-test-helper arguments...`, or `executable arguments...`,
    /// with `environment` added to this process's environment and stdin
    /// read from the file `input`, or from ``send(line:)`` with `commands`
    /// (else inherited).
    init(
        _ arguments: [String], executable: URL = HelperProcess.executableURL,
        environment: [String: String] = [:], input: String? = nil, commands: Bool = false
    ) throws {
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        if let input {
            guard let handle = FileHandle(forReadingAtPath: input) else { throw CocoaError(.fileReadNoSuchFile) }
            process.standardInput = handle
        }
        self.commands = commands ? Pipe() : nil
        if let pipe = self.commands {
            Self.ignoreBrokenPipes
            process.standardInput = pipe
        }
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    /// A helper still running when its test lets go of it (a test that
    /// failed or threw before waiting for it) is killed, so that no helper
    /// outlives the test that started it: a follower or an updater left
    /// waiting for a stop file in a deleted folder would run forever.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Sends `signal` (e.g. `SIGKILL`) to the process.
    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Makes a write to a pipe whose reader is gone fail with `EPIPE`
    /// instead of killing the test process with SIGPIPE: a helper that a
    /// test sends commands to may die (or be killed by a watchdog) first.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Writes `line` and a newline to the stdin of a process started with
    /// `commands`; throws when the process is gone.
    func send(line: String) throws {
        guard let pipe = commands else { throw CocoaError(.fileWriteNoPermission) }
        try pipe.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Reads lines from stdout until one satisfies `predicate`; returns it, or
    /// nil at end of output.
    func readLine(until predicate: (String) -> Bool = { _ in true }) -> String? {
        while true {
            guard let line = Self.nextLine(from: output, buffer: &pending) else { return nil }
            if predicate(line) { return line }
        }
    }

    /// Reads lines from stderr until one satisfies `predicate`; returns it,
    /// or nil at end of output. ``finish()`` returns the stderr not read.
    func readErrorLine(until predicate: (String) -> Bool = { _ in true }) -> String? {
        while true {
            guard let line = Self.nextLine(from: errors, buffer: &pendingErrors) else { return nil }
            if predicate(line) { return line }
        }
    }

    private var pending = Data()
    private var pendingErrors = Data()
    private static func nextLine(from pipe: Pipe, buffer pending: inout Data) -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending = Data(pending[(newline + 1)...])
                return line
            }
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
        }
    }

    /// Waits for exit; returns the exit status, the remaining stdout lines and stderr.
    @discardableResult
    func finish() -> (status: Int32, lines: [String], errors: String) {
        var lines: [String] = []
        while let line = Self.nextLine(from: output, buffer: &pending) { lines.append(line) }
        let errorText = String(decoding: pendingErrors + errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
        return (status, lines, errorText)
    }

    // MARK: Waiting from async tests

    /// Where the async forms below wait: dispatch threads, never Swift's
    /// cooperative pool. That pool has one thread per core (two on a 2-core
    /// machine); an async test blocked on a helper's pipe would hold one,
    /// and tests running beside it whose own tasks need the pool (the
    /// election tests' pollers, the coalescers) would stall behind it.
    private static let waiting = BlockingIOQueue(label: "HelperProcess.waiting", concurrent: true)

    /// ``readLine(until:)``, waiting off the cooperative pool.
    func readLine(until predicate: @escaping @Sendable (String) -> Bool = { _ in true }) async -> String? {
        await Self.waiting.run { self.readLine(until: predicate) }
    }

    /// Reads stdout until a line satisfies `predicate`, then sleeps `delay`
    /// microseconds and sends `signal`, all on the waiting thread: the
    /// signal follows the helper's output as closely as a blocking read
    /// would, with no hop back to the cooperative pool in between (what a
    /// test that kills a short-lived process at one of its steps needs).
    /// Returns the line; at end of output, nil, and no signal is sent.
    func readLine(
        until predicate: @escaping @Sendable (String) -> Bool, thenSend signal: Int32, after delay: UInt32
    ) async -> String? {
        await Self.waiting.run {
            guard let line = self.readLine(until: predicate) else { return nil }
            usleep(delay)
            self.send(signal)
            return line
        }
    }

    /// ``readErrorLine(until:)``, waiting off the cooperative pool.
    func readErrorLine(until predicate: @escaping @Sendable (String) -> Bool = { _ in true }) async -> String? {
        await Self.waiting.run { self.readErrorLine(until: predicate) }
    }

    /// ``finish()``, waiting off the cooperative pool.
    @discardableResult
    func finish() async -> (status: Int32, lines: [String], errors: String) {
        await Self.waiting.run { self.finish() }
    }

    /// Runs the helper to completion and expects exit status 0; returns its stdout lines.
    static func run(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let helper = try HelperProcess(arguments)
        let result = helper.finish()
        #expect(result.status == 0, "helper \(arguments) failed: \(result.errors)", sourceLocation: sourceLocation)
        return result.lines
    }

    /// ``run(_:sourceLocation:)`` for async tests: waits off the cooperative pool.
    static func run(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let result = try await HelperProcess(arguments).finish()
        #expect(result.status == 0, "helper \(arguments) failed: \(result.errors)", sourceLocation: sourceLocation)
        return result.lines
    }
}

/// A fresh temporary directory, removed when the value is dropped by `withTemporaryDirectory`.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = NSTemporaryDirectory() + "whycache-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Async variant of ``withTemporaryDirectory(_:)``.
func withTemporaryDirectory<R>(_ body: (String) async throws -> R) async throws -> R {
    let path = NSTemporaryDirectory() + "whycache-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}
