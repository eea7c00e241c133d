import ArgumentParser
import WhyCache

/// `whycache-tool update [--through ID] --store URL --state PATH [--prefix P]… [--hex]`
struct UpdateCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Apply the log's new records to the state file (created if missing); print the update id reached.")

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Stop at this update id (the state may go a little further to stay exact; see SharedCache.update).")
    var through: UInt64?

    func execute() async throws {
        let configuration = try subscription.cacheConfiguration(statePath: state.state, text: text)
        let summary = try await log.connection().withCache(statePath: state.state, configuration: configuration) { cache in
            try await cache.update(through: through)
        }
        ToolOutput.line(String(summary.updateID))
    }
}
