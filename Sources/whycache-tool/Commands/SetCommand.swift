import ArgumentParser
import WhyCache

/// `whycache-tool set KEY VALUE --store URL [--state PATH [--prefix P]…] [--hex]`
///
/// Without `--state` the write goes straight to the log (a deploy or CI
/// host keeps no cache); with it, the state file holds the write when the
/// command returns. A key outside the prefixes of a subscribed state file
/// is written to the log, but that state file does not keep it.
struct SetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set KEY to VALUE in the log; print the update id of the record written.",
        discussion: """
            Without --state the write goes to the log only (no state file is opened or created): every host sees it \
            at its next update. With --state, that state file holds the write (or something newer) when the command \
            returns.
            """)

    @OptionGroup var log: LogOptions
    @OptionGroup var state: OptionalStateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String

    @Argument(help: "The value (UTF-8 text, or hex with --hex).")
    var value: String

    func validate() throws {
        try state.checkPrefixes(subscription)
    }

    func execute() async throws {
        var write = LogWrite()
        try write.append(.set(key: try text.bytes(key, naming: "key"), value: try text.bytes(value, naming: "value")), context: nil)
        let updateID = try await write.write(to: try log.connection(), state: try state.cache(subscription, text: text))
        ToolOutput.line(String(updateID))
    }
}
