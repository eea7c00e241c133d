import ArgumentParser
import WhyCache

/// `whycache-tool delete KEY… --store URL --state PATH [--prefix P]… [--hex]`
struct DeleteCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete the keys in the log (missing keys are no error); print the update id of the last record written.")

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The keys (UTF-8 text, or hex with --hex).")
    var keys: [String]

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("name at least one key to delete") }
    }

    func execute() async throws {
        let keys = try keys.map { try text.bytes($0, naming: "key") }
        let configuration = try subscription.cacheConfiguration(statePath: state.state, text: text)
        let updateID = try await log.connection().withCache(statePath: state.state, configuration: configuration) { cache in
            try await cache.delete(contentsOf: keys)
        }
        ToolOutput.line(String(updateID))
    }
}
