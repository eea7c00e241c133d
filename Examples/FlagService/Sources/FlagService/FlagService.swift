import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import WhyCache

/// A feature-flag service: every worker process of a machine serves flags
/// from one shared-state file, and any of them takes writes.
///
/// Run several of these on one machine with the same `FLAGS_STATE`: they
/// share one copy of the flags in memory, and their `BackgroundUpdater`s
/// elect one poller that reads the log for all of them.
///
/// | Route | Does |
/// | --- | --- |
/// | `GET /flags/NAME[?after=ID]` | the flag's value (404 when unset); with `after`, first waits until this machine has applied update `ID` (read-your-writes across processes) |
/// | `PUT /admin/flags/NAME` | sets the flag to the request body; answers the update id |
/// | `DELETE /admin/flags/NAME` | deletes the flag; answers the update id |
/// | `GET /metrics` | the cache's metrics, Prometheus text format |
///
/// Environment: `FLAGS_LOG` (the log: a folder for the file datastore),
/// `FLAGS_STATE` (the shared-state file, e.g. `/dev/shm/flags.whycache`),
/// `PORT` (default 8080; 0 picks a free one). It prints `listening on port
/// N` once it serves, and stops cleanly on SIGTERM or SIGINT.
@main
struct FlagService {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let logFolder = environment["FLAGS_LOG"], let statePath = environment["FLAGS_STATE"] else {
            FileHandle.standardError.write(Data("usage: FLAGS_LOG=FOLDER FLAGS_STATE=PATH [PORT=8080] FlagService\n".utf8))
            exit(2)
        }
        guard let port = Int(environment["PORT"] ?? "8080") else {
            FileHandle.standardError.write(Data("FlagService: PORT must be a number\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "FlagService")
        logger.logLevel = .notice

        // The cache records its metrics into this registry; /metrics prints it.
        let registry = PrometheusCollectorRegistry()
        var configuration = SharedCache.Configuration()
        configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        configuration.logger = logger
        // In production the log is MySQL: `MySQLDatastore(configuration:)` from WhyCacheMySQL.
        let log = try FileDatastore(directory: logFolder)
        try await log.createIfMissing()
        let cache = try SharedCache(statePath: statePath, datastore: log, configuration: configuration)
        let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .milliseconds(250)), logger: logger)

        let routes = FlagRoutes(cache: cache, updater: updater, registry: registry)
        let application = Application(
            router: routes.router(),
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "FlagService"),
            // The updater runs in the application's ServiceGroup: it starts with the
            // server and stops with it on SIGTERM.
            services: [updater],
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("listening on port \(channel.localAddress?.port ?? port)\n".utf8))
            },
            logger: logger
        )
        try await application.runService()
        cache.close()
    }
}
