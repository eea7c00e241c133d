import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool snapshot --state PATH --out PATH|- [--gzip] [--level N]`
///
/// Writes a consistent, compacted copy of the state file at one update id
/// (docs/FORMAT.md section 6) while other processes keep reading it and
/// applying updates: the copy comes from one pinned view. A file named by
/// `--out` appears only complete (written under a temporary name, flushed,
/// then renamed); `--out -` streams to stdout for a pipe.
struct SnapshotCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Write a consistent, compacted copy of the state file at one update id, while it stays in use.",
        discussion: """
            Prints the snapshot's update id, key count and size (on stderr, and only on a terminal, when the snapshot \
            goes to stdout). To snapshot the log's latest state, run update first. Restore it on another host with restore.
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions

    @Option(name: .long, help: ArgumentHelp("Required. The snapshot file, or - for stdout.", valueName: "path|-"))
    var out: String

    @Flag(name: .long, help: "Compress the snapshot as a gzip stream (restore and gunzip both read it).")
    var gzip = false

    @Option(name: .long, help: "The gzip level with --gzip: 1 fastest … 9 smallest.")
    var level = SnapshotFiles.defaultGzipLevel

    func validate() throws {
        guard (1...9).contains(level) else { throw ValidationError("--level must be between 1 and 9") }
    }

    func execute() async throws {
        let toStdout = out == "-"
        if !toStdout, SharedStateFile.hasStateFileSignature(at: out) {
            // Renaming the snapshot over a state file would replace it under
            // every process that reads it (--out naming --state among them).
            throw ToolUsageError("--out \(out) is a WhyCache state file; refusing to replace it with a snapshot")
        }
        if toStdout && ToolOutput.isTerminal(STDOUT_FILENO) {
            throw ToolUsageError("refusing to write a binary snapshot to a terminal; redirect stdout or use --out PATH")
        }
        let file = try state.openStateFile()
        let view = try file.snapshot()
        defer { view.close() }
        let writer = SnapshotWriter(compression: gzip ? .gzip(level: level) : .none)
        let progress = ProgressBar(label: "snapshot", unit: "keys")
        progress.begin("snapshot at update \(view.updateID)", total: UInt64(view.count))
        let summary = try SnapshotFiles.write(view, with: writer, to: out) { progress.update(done: UInt64($0.keysDone)) }
        progress.finish(done: UInt64(summary.header.keyCount))
        let message = "snapshot at update \(summary.header.updateID): \(summary.header.keyCount) keys, \(summary.transferredBytes) bytes"
        if !toStdout {
            ToolOutput.line("\(message) in \(out)")
        } else if ToolOutput.isTerminal(STDERR_FILENO) {
            FileHandle.standardError.write(Data("\(message)\n".utf8))
        }
    }
}

/// A file that appears at its path only once it is complete: written under
/// a temporary name in the same folder, flushed with `fsync`, then renamed.
enum AtomicOutputFile {
    /// Runs `body` with a descriptor open for writing a new file, then puts
    /// the file at `path`; on failure the temporary file is removed and
    /// whatever was at `path` is untouched.
    static func write<T>(to path: String, _ body: (Int32) throws -> T) throws -> T {
        let temporary = "\(path).partial.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DatastoreError.ioFailure(operation: "create", path: temporary, errno: errno) }
        do {
            let result = try body(descriptor)
            guard fsync(descriptor) == 0 else { throw DatastoreError.ioFailure(operation: "fsync", path: temporary, errno: errno) }
            guard close(descriptor) == 0 else { throw DatastoreError.ioFailure(operation: "close", path: temporary, errno: errno) }
            guard rename(temporary, path) == 0 else { throw DatastoreError.ioFailure(operation: "rename", path: path, errno: errno) }
            return result
        } catch {
            _ = close(descriptor)
            _ = unlink(temporary)
            throw error
        }
    }
}
