import ArgumentParser
import WhyCache

/// `whycache-tool update [--through ID] --store URL --state PATH [--prefix P]… [--hex]`
///
/// On a terminal, an update of at least ``progressThreshold`` ids applies
/// the log in steps of about a hundredth of the way each and draws a
/// progress bar between them; elsewhere (scripts, cron) it is one
/// ``SharedCache/update(through:)`` call, and stderr stays empty.
struct UpdateCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Apply the log's new records to the state file (created if missing); print the update id reached.",
        discussion: "On a terminal, a progress bar on stderr follows an update of \(ProgressBar.grouped(progressThreshold)) update ids or more.")

    /// The fewest update ids to apply for which a terminal shows progress.
    static let progressThreshold: UInt64 = 10_000

    /// The fewest update ids one step applies.
    static let minimumStep: UInt64 = 1_000

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Stop at this update id (the state may go a little further to stay exact; see SharedCache.update).")
    var through: UInt64?

    func execute() async throws {
        let configuration = try subscription.cacheConfiguration(statePath: state.state, text: text)
        let progress = ProgressBar(label: "update", unit: "ids")
        let summary = try await log.connection().withDatastore { datastore -> UpdateSummary in
            let cache = try SharedCache(statePath: state.state, datastore: datastore, configuration: configuration)
            defer { cache.close() }
            guard progress.isEnabled else { return try await cache.update(through: through) }
            return try await Self.update(cache, datastore: datastore, through: through, progress: progress)
        }
        ToolOutput.line(String(summary.updateID))
    }

    /// Applies the log through `through` (the end when nil) like
    /// ``SharedCache/update(through:)``, in steps when there are at least
    /// ``progressThreshold`` ids to go, with `progress` drawn after each.
    ///
    /// Each step is an update through a nearer id, so each commits a prefix
    /// of the log as one call would; a last call through `through` picks up
    /// what was appended meanwhile and returns the summary.
    private static func update(
        _ cache: SharedCache, datastore: any Datastore, through: UInt64?, progress: ProgressBar
    ) async throws -> UpdateSummary {
        let start = try cache.updateID()
        let latest = try await datastore.latestUpdateID()
        let end = through.map { min($0, latest) } ?? latest
        guard end > start, end - start >= progressThreshold else { return try await cache.update(through: through) }
        let total = end - start
        progress.begin("update: applying the log", total: total)
        let step = max(minimumStep, total / 100)
        var reached = start
        do {
            while reached < end {
                let summary = try await cache.update(through: min(reached + step, end))
                // A step that moves nothing leaves the rest to the last call.
                guard summary.updateID > reached else { break }
                reached = summary.updateID
                progress.update(done: min(reached, end) - start)
            }
            let summary = try await cache.update(through: through)
            progress.finish(done: min(max(summary.updateID, start), end) - start)
            return summary
        } catch {
            progress.finish(done: min(reached, end) - start)
            throw error
        }
    }
}
