import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WhyCache
import WhyCacheMySQL

/// What a fleet process reports when it ends: the statements and result
/// bytes its datastore sent and read (``MySQLDatastore/statistics()``).
struct FleetProcessReport: Codable {
    var primaryStatements: UInt64
    var replicaStatements: UInt64
    var resultBytes: UInt64

    init(_ statistics: MySQLDatastoreStatistics) {
        primaryStatements = statistics.primaryStatements
        replicaStatements = statistics.replicaStatements
        resultBytes = statistics.primaryResultBytes + statistics.replicaResultBytes
    }

    var statements: UInt64 { primaryStatements + replicaStatements }

    /// Closes `cache` and `datastore` and prints the datastore's report as
    /// one JSON line: the end of every fleet process.
    static func finish(cache: SharedCache, datastore: MySQLDatastore) async throws {
        cache.close()
        let report = FleetProcessReport(datastore.statistics())
        await datastore.close()
        print(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    }
}

/// The options every fleet process shares: the log (the `--store` URL with
/// its replicas, and the exact table).
struct FleetLogOptions: ParsableArguments {
    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "The log table (the fleet's fresh table).")
    var table: String

    /// The datastore of `--store` on `--table`.
    func datastore() throws -> MySQLDatastore {
        guard case .mysql(let address) = try storeOptions.requireStore() else {
            throw ValidationError("bench fleet needs a mysql:// store")
        }
        var configuration = try address.configuration(password: try storeOptions.password())
        configuration.table = try MySQLIdentifier(table)
        return try MySQLDatastore(configuration: configuration)
    }
}

/// `bench fleet-follower`: one worker process of a fleet machine. It follows
/// its machine's state file with a ``BackgroundUpdater`` (one poller per
/// machine, elected through the file) until SIGTERM, then prints its
/// ``FleetProcessReport`` as one JSON line.
struct BenchFleetFollowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-follower", abstract: "A follower process of bench fleet (internal).", shouldDisplay: false)

    @OptionGroup var log: FleetLogOptions

    @Option(name: .long, help: "Seconds between polls.")
    var interval: Double

    func run() async throws {
        let datastore = try log.datastore()
        let cache = try SharedCache(statePath: try log.storeOptions.requireState(), datastore: datastore)
        let quiet = Logger(label: "bench-fleet", factory: { _ in SwiftLogNoOpLogHandler() })
        let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .milliseconds(Int64(interval * 1000))), logger: quiet)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: updater)], gracefulShutdownSignals: [.sigterm], logger: quiet))
        try await group.run()
        try await FleetProcessReport.finish(cache: cache, datastore: datastore)
    }
}

/// `bench fleet-writer`: a writer of bench fleet. Sets `fleet/<W>/<n>` for
/// n = 0, 1, … at `--rate` sets per second for `--seconds`, through a cache
/// on its machine's state file (so each set returns once applied there),
/// and writes `n NANOSECONDS` (the monotonic time the set returned) per set
/// to `--output`; then prints its ``FleetProcessReport``.
struct BenchFleetWriterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-writer", abstract: "A writer process of bench fleet (internal).", shouldDisplay: false)

    @OptionGroup var log: FleetLogOptions

    @Option(name: .long, help: "The writer's number (its keys are fleet/<number>/<n>).")
    var writer: Int

    @Option(name: .long, help: "Sets per second.")
    var rate: Double

    @Option(name: .long, help: "Seconds to write for.")
    var seconds: Double

    @Option(name: .long, help: "Where the return time of each set goes.")
    var output: String

    /// The key of set `index` of `writer`.
    static func key(writer: Int, index: Int) -> [UInt8] { Array("fleet/\(writer)/\(index)".utf8) }

    func run() async throws {
        let datastore = try log.datastore()
        let cache = try SharedCache(statePath: try log.storeOptions.requireState(), datastore: datastore)
        var lines = ""
        let start = Clocks.monotonicNanoseconds()
        let end = start + UInt64(seconds * 1e9)
        let spacing = 1e9 / rate
        var index = 0
        while true {
            let due = start + UInt64(Double(index) * spacing)
            guard due < end else { break }
            let now = Clocks.monotonicNanoseconds()
            if due > now { try await Task.sleep(for: .nanoseconds(Int64(due - now))) }
            _ = try await cache.set(Array(repeating: UInt8(truncatingIfNeeded: index), count: 64), forKey: Self.key(writer: writer, index: index))
            lines += "\(index) \(Clocks.monotonicNanoseconds())\n"
            index += 1
        }
        try lines.write(toFile: output, atomically: true, encoding: .utf8)
        try await FleetProcessReport.finish(cache: cache, datastore: datastore)
    }
}

