import ArgumentParser
import WhyCache

/// `whycache-tool delete KEY… --store URL --state PATH [--prefix P]… [--hex]`
struct DeleteCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete the keys in the log (missing keys are no error); print the update id of the last record written.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The keys (UTF-8 text, or hex with --hex).")
    var keys: [String]

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("name at least one key to delete") }
    }

    func execute() async throws {
        let keys = try keys.map { try text.bytes($0, naming: "key") }
        let updateID = try await storeOptions.withCache(subscription, text: text) { cache in try await cache.delete(contentsOf: keys) }
        ToolOutput.line(String(updateID))
    }
}
