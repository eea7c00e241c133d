import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool verify --store URL --state PATH [--scratch DIR] [--prefix P]… [--hex]`
///
/// A subscribed state file is compared with a replay of the log filtered by
/// its prefixes.
struct VerifyCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Rebuild the state from the log into a scratch file and compare it with the state file key by key.",
        discussion: """
            Exit status 0 when they are equal, printing "equal at update ID: N keys"; 1 when the state file is damaged \
            or differs, printing the first differences, one per line. The state file is first brought to the log's end (as update does), so that \
            both are compared at one update id.
            """)

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: ArgumentHelp("Where the scratch state file is built (default: the state file's folder).", valueName: "dir"))
    var scratch: String?

    @Option(name: .long, help: "How many differences to list.")
    var maximumDifferences = 20

    func execute() async throws {
        let statePath = state.state
        let folder = scratch ?? URL(fileURLWithPath: statePath).deletingLastPathComponent().path
        let progress = ProgressBar(label: "verify: rebuilding from the log", unit: "keys")
        progress.begin("verify: rebuilding from the log")
        let outcome: StateVerification
        do {
            let configuration = try subscription.cacheConfiguration(statePath: statePath, text: text)
            outcome = try await log.connection().withCache(statePath: statePath, configuration: configuration) { cache in
                try await StateVerifier(cache: cache, scratchDirectory: folder).verify(maximumDifferences: maximumDifferences) { compared, total in
                    progress.enter("verify: comparing", total: UInt64(total))
                    progress.update(done: UInt64(compared))
                }
            }
        } catch CacheError.stateFile(let error) where Self.isDamage(error) {
            ToolOutput.error("the state file is damaged: \(error)")
            throw ExitCode(ToolExitStatus.negative)
        }
        progress.finish(done: UInt64(outcome.stateKeyCount))
        if outcome.isEqual {
            ToolOutput.line("equal at update \(outcome.updateID): \(outcome.stateKeyCount) keys")
            return
        }
        for difference in outcome.differences {
            ToolOutput.line(describe(difference))
        }
        ToolOutput.error("the state differs from the log at update \(outcome.updateID): \(outcome.differenceCount) keys "
            + "(state \(outcome.stateKeyCount) keys, log \(outcome.logKeyCount) keys)")
        throw ExitCode(ToolExitStatus.negative)
    }

    private func describe(_ difference: StateDifference) -> String {
        switch difference {
        case .missingFromState(let key, let logValue):
            "missing from the state: key \(JSONText.quoted(text.text(key))), log value \(JSONText.quoted(text.text(logValue)))"
        case .notInLog(let key, let stateValue):
            "not in the log: key \(JSONText.quoted(text.text(key))), state value \(JSONText.quoted(text.text(stateValue)))"
        case .valueDiffers(let key, let stateValue, let logValue):
            "value differs: key \(JSONText.quoted(text.text(key))), state value \(JSONText.quoted(text.text(stateValue))), log value \(JSONText.quoted(text.text(logValue)))"
        }
    }

    private static func isDamage(_ error: StateFileError) -> Bool {
        switch error {
        case .corrupted, .truncated, .notAStateFile, .unsupportedFormatVersion, .unsupportedCreationFlags: true
        default: false
        }
    }
}
