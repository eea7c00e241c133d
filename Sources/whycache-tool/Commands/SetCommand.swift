import ArgumentParser
import WhyCache

/// `whycache-tool set KEY VALUE --store URL --state PATH [--prefix P]… [--hex]`
///
/// A key outside the prefixes of a subscribed state file is written to the
/// log, but that state file does not keep it.
struct SetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set KEY to VALUE in the log; print the update id. When it returns, the state file holds it (or something newer).")

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String

    @Argument(help: "The value (UTF-8 text, or hex with --hex).")
    var value: String

    func execute() async throws {
        let key = try text.bytes(key, naming: "key")
        let value = try text.bytes(value, naming: "value")
        let configuration = try subscription.cacheConfiguration(statePath: state.state, text: text)
        let updateID = try await log.connection().withCache(statePath: state.state, configuration: configuration) { cache in
            try await cache.set(value, forKey: key)
        }
        ToolOutput.line(String(updateID))
    }
}
