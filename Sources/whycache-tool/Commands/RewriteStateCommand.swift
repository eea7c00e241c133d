import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool rewrite-state --state PATH [--json]`
///
/// Rewrites a live state file in key order and installs the result in its
/// place (``StateFileRewriter``): range scans, snapshots and checkpoints then
/// walk the file sequentially, and the file sheds the slack of its free
/// lists. Processes keep reading and writing meanwhile; writers wait only
/// for the last changes and the install. Processes that have the old file
/// open move to the new one at their next update.
struct RewriteStateCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite-state",
        abstract: "Rewrite the state file in key order and put it in place while processes use it; print what it did.",
        discussion: """
            Needs free space for a second copy of the state next to the file. Readers are never blocked; writers wait \
            only for the changes committed during the rewrite's last round and the install. A file that another process \
            replaced meanwhile, or whose writes keep changing too many keys for the rewrite to catch up, is left as it is \
            (exit status 3).
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func execute() async throws {
        // Validates the file (and refuses a missing one) before the work starts.
        _ = try state.openStateFile()
        let statePath = state.state
        let summary = try await BlockingIOQueue(label: "whycache-tool.rewrite-state", concurrent: false).run { () throws(StateFileError) in
            try StateFileRewriter().rewrite(at: statePath)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            ToolOutput.line(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else if summary.isInstalled {
            ToolOutput.line(
                "rewrote update \(summary.updateID): \(summary.keyCount) keys, \(summary.bytesBefore) -> \(summary.bytesAfter) heap bytes, "
                    + "\(summary.changesCaughtUp) changes caught up in \(summary.catchUpRounds) rounds, \(summary.changesUnderLock) under the lock "
                    + "(held \(Self.milliseconds(summary.writerLockNanoseconds)) of \(Self.milliseconds(summary.totalNanoseconds)))")
        }
        switch summary.outcome {
        case .installed:
            return
        case .fileReplaced:
            ToolOutput.error("another process replaced \(statePath) during the rewrite; it was left as it is")
        case .writesDidNotSettle:
            ToolOutput.error(
                "writes kept changing more than \(StateFileRewriter().maximumChangesBeforeLocking) keys per round for "
                    + "\(summary.catchUpRounds) rounds; \(statePath) was left as it is (try again when writes are quieter)")
        }
        throw ExitCode(ToolExitStatus.failure)
    }

    /// `nanoseconds` as milliseconds with one decimal, e.g. "12.5 ms".
    private static func milliseconds(_ nanoseconds: UInt64) -> String {
        String(format: "%.1f ms", Double(nanoseconds) / 1e6)
    }
}
