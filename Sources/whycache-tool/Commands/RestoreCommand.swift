import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool restore --from PATH|- --state PATH [--force]`
///
/// Validates a snapshot (plain or gzip) and installs it atomically as the
/// state file. Processes that have the old file open keep reading it and
/// move to the new one at their next `update()`, which then continues from
/// the snapshot's update id (or rebuilds from the log's checkpoint when the
/// log no longer holds the records after it).
struct RestoreCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Validate a snapshot and install it atomically as the state file; then run update.",
        discussion: "A damaged or truncated snapshot is refused (exit status 3) and the state file is left as it was.")

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: ArgumentHelp("The snapshot file, or - for stdin (plain or gzip).", valueName: "path|-"))
    var from: String

    @Flag(name: .long, help: "Replace a state that is at a newer update id than the snapshot (its readers move backwards).")
    var force = false

    func execute() async throws {
        let statePath = try storeOptions.requireState()
        let descriptor: Int32
        if from == "-" {
            descriptor = STDIN_FILENO
        } else {
            descriptor = open(from, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw DatastoreError.ioFailure(operation: "open the snapshot", path: from, errno: errno) }
        }
        defer { if descriptor != STDIN_FILENO { close(descriptor) } }
        let progress = ProgressBar(label: "restore", unit: "keys")
        var started = false
        let summary = try SnapshotRestorer(replacingNewerState: force).restore(
            from: SnapshotStreams.reading(from: descriptor), at: statePath
        ) { step in
            if !started {
                progress.begin("restore", total: UInt64(step.keyCount))
                started = true
            }
            progress.update(done: UInt64(step.keysDone))
        }
        progress.finish(done: UInt64(summary.header.keyCount))
        ToolOutput.line("restored update \(summary.header.updateID): \(summary.header.keyCount) keys into \(statePath)")
    }
}
