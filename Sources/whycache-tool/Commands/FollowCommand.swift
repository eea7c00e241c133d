import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WhyCache

/// `whycache-tool follow [--interval SECONDS] --store URL --state PATH [--prefix P]… [--hex]`
///
/// Keeps a host's state file current for processes that never call
/// `update()` themselves, with the library's ``BackgroundUpdater`` in a
/// `ServiceGroup`: a round every `--interval`, twice as long a wait after
/// each failure (up to `--maximum-backoff`), back to the interval after the
/// first success. Rounds that apply records, failures and recoveries are
/// logged on stderr. SIGTERM or SIGINT ends it gracefully after the round in
/// progress, with status 0.
///
/// Like every ``BackgroundUpdater``, it takes part in the election of one
/// poller among the processes that share the state file (docs/FORMAT.md
/// section 1.10): it reads the log only while it holds the file's poller
/// lease, and otherwise follows the update id that another process's poller
/// moves (several `follow` processes, or `follow` next to workers that run
/// their own updater, make one process's datastore reads). It logs on stderr
/// when it becomes the poller ("polling the log for the processes of this
/// state file") and when it follows another process's ("following another
/// process's poller"); when the poller dies, it takes over within an interval.
struct FollowCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Keep the state file current: update every --interval seconds, back off on errors, log lag on stderr, stop on SIGTERM.",
        discussion: "Prints nothing on stdout; logs on stderr the rounds that apply records, failures, recoveries and poller changes.")

    @OptionGroup var log: LogOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Seconds between updates (BackgroundUpdater's default).")
    var interval: Double = BackgroundUpdater.Configuration.defaultInterval.inSeconds

    @Option(name: .long, help: "The longest wait, in seconds, after repeated errors (BackgroundUpdater's default).")
    var maximumBackoff: Double = BackgroundUpdater.Configuration.defaultMaximumBackoff.inSeconds

    func validate() throws {
        guard interval > 0, interval.isFinite else { throw ValidationError("--interval must be a positive number of seconds") }
        guard maximumBackoff >= interval, maximumBackoff.isFinite else { throw ValidationError("--maximum-backoff must be at least --interval") }
    }

    func execute() async throws {
        let statePath = state.state
        var logger = Logger(label: "whycache-tool.follow", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .debug
        let configuration = try subscription.cacheConfiguration(statePath: statePath, text: text)
        let connection = try log.connection()
        try await connection.withDatastore { datastore in
            let cache = try SharedCache(statePath: statePath, datastore: datastore, configuration: configuration)
            defer { cache.close() }
            let updater = BackgroundUpdater(
                cache: cache,
                configuration: .init(interval: .milliseconds(Int64(interval * 1000)), maximumBackoff: .milliseconds(Int64(maximumBackoff * 1000))),
                logger: logger)
            let store = connection.store.description
            logger.info("following", metadata: ["store": "\(store)", "state": "\(statePath)", "interval": "\(interval) s"])
            var groupLogger = logger
            groupLogger.logLevel = .notice
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: updater)], gracefulShutdownSignals: [.sigterm, .sigint], logger: groupLogger))
            try await group.run()
            logger.info("stopped")
        }
    }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
