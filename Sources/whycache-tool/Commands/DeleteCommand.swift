import ArgumentParser
import WhyCache

/// `whycache-tool delete KEY… --store URL [--state PATH [--prefix P]…] [--hex]`
///
/// Like `set`, it writes straight to the log without `--state`, and keeps
/// read-your-writes on the state file with it.
struct DeleteCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete the keys in the log (missing keys are no error); print the update id of the last record written.",
        discussion: """
            Without --state the deletion goes to the log only (no state file is opened or created): every host sees \
            it at its next update. With --state, that state file no longer holds the keys when the command returns. \
            To delete many keys from a file, use set --from-json with {"key": K, "delete": true} lines.
            """)

    @OptionGroup var log: LogOptions
    @OptionGroup var state: OptionalStateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The keys (UTF-8 text, or hex with --hex).")
    var keys: [String]

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("name at least one key to delete") }
        try state.checkPrefixes(subscription)
    }

    func execute() async throws {
        var write = LogWrite()
        for key in keys {
            try write.append(.delete(key: try text.bytes(key, naming: "key")), context: nil)
        }
        let updateID = try await write.write(to: try log.connection(), state: try state.cache(subscription, text: text))
        ToolOutput.line(String(updateID))
    }
}
