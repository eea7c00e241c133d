import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool restore --from PATH|- --state PATH [--force] [--prefix P]… [--hex]`
///
/// Validates a snapshot (plain or gzip) and installs it atomically as the
/// state file. Processes that have the old file open keep reading it and
/// move to the new one at their next `update()`, which then continues from
/// the snapshot's update id (or rebuilds from the log's checkpoint when the
/// log no longer holds the records after it).
///
/// The restored file subscribes to the prefixes the snapshot holds (all
/// keys, or those a subscribed state or `snapshot` kept). A snapshot whose
/// prefixes differ from those of the state file at the path, or from the
/// `--prefix` options given, is refused (exit status 3) and the file is left
/// as it was.
struct RestoreCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Validate a snapshot and install it atomically as the state file; print its update id and key count. Then run update.",
        discussion: """
            A damaged or truncated snapshot, or one whose key prefixes differ from those of the state file (or of \
            --prefix), is refused (exit status 3) and the state file is left as it was.
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: ArgumentHelp("Required. The snapshot file, or - for stdin (plain or gzip).", valueName: "path|-"))
    var from: String

    @Flag(name: .long, help: "Replace a state that is at a newer update id than the snapshot (its readers move backwards).")
    var force = false

    func execute() async throws {
        let statePath = state.state
        let progress = ProgressBar(label: "restore", unit: "keys")
        var started = false
        var options = SharedStateFile.Options()
        options.subscribedPrefixes = try subscription.requested(text) ?? []
        let restorer = SnapshotRestorer(options: options, replacingNewerState: force)
        let summary = try SnapshotFiles.restore(from: from, at: statePath, with: restorer) { step in
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
