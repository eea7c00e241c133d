import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool bench coalesce`: the rate of concurrent single-key sets of
/// one process with write coalescing off and on
/// (`SharedCache.Configuration.coalescesWrites`), and what it costs a lone
/// writer, through the datastore of `--store`.
///
/// Each mode writes a fresh log of its own: for `file:///DIR`, a new folder
/// in DIR with fsync policy `always` (removed afterwards); for `mysql://…`,
/// the tables `<table>_coalesce_off` and `<table>_coalesce_on` (default
/// table `bench_<pid>`), which stay on the server (their names are printed
/// on stderr).
struct BenchCoalesceCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "coalesce",
        abstract: "Concurrent and lone set rates with write coalescing off and on, through the datastore of --store (a MySQL run leaves its tables on the server).")

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Concurrent writer tasks sharing one SharedCache.")
    var tasks = 64

    @Option(name: .long, help: "Single-key sets (of distinct keys) per task.")
    var taskSets = 500

    @Option(name: .long, help: "Sequential single-key sets of one lone writer, timed for set_latency_us.")
    var loneSets = 1_000

    @Option(name: .long, help: "Microseconds the next coalesced append may wait for the callers of the previous one (SharedCache.Configuration.coalescingGatherWait; default: the library's; 0: off).")
    var gatherWaitUs: Int?

    @Option(name: .long, help: "Folder for the state files (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    /// The two modes, in the order they run, and the log suffix of each.
    private static let modes: [(coalescing: Bool, suffix: String)] = [(false, "coalesce_off"), (true, "coalesce_on")]

    /// Rejects counts below 1.
    func validate() throws {
        try requireAtLeastOne(["tasks": tasks, "task-sets": taskSets, "lone-sets": loneSets])
        if let gatherWaitUs, gatherWaitUs < 0 { throw ValidationError("--gather-wait-us must not be negative") }
    }

    /// Runs both modes, each on a fresh log.
    func execute() async throws {
        try await BenchProgress.run("bench coalesce") { try await withBenchFolder("coalesce", in: directory) { try await measure(in: $0) } }
    }

    private func measure(in folder: String) async throws {
        let store = try storeOptions.requireStore()
        if case .mysql(let address) = store {
            let base = try address.configuration(password: try storeOptions.password(), defaultTable: "bench_\(getpid())")
            BenchMySQLCommand.reportTables(base, suffixes: Self.modes.map(\.suffix), command: "bench coalesce")
        }
        for mode in Self.modes {
            try await BenchLogs.withFreshLog(store, options: storeOptions, suffix: mode.suffix) { datastore, name in
                try await run(on: datastore, named: name, coalescing: mode.coalescing, folder: folder)
            }
        }
    }

    /// The concurrent sets, then the lone writer's, on one cache over `datastore`.
    private func run(on datastore: any Datastore, named name: String, coalescing: Bool, folder: String) async throws {
        var configuration = SharedCache.Configuration()
        configuration.coalescesWrites = coalescing
        if let gatherWaitUs {
            configuration.coalescingGatherWait = .microseconds(gatherWaitUs)
        }
        let cache = try SharedCache(
            statePath: "\(folder)/state-\(coalescing ? "on" : "off")", datastore: datastore, configuration: configuration)
        defer { cache.close() }
        let mode = coalescing ? "coalescing on (gather wait \(configuration.coalescingGatherWait))" : "coalescing off"

        // Untimed: the first appends open files, connections and statements.
        let total = tasks * taskSets
        _ = try await SetWorkloads.sequential(on: cache, count: 10, firstKey: total + loneSets)
        let before = try await datastore.latestUpdateID()
        let cpuStart = cpuSeconds()
        let (elapsed, latencies) = try await SetWorkloads.concurrent(on: cache, writers: tasks, setsPerWriter: taskSets)
        let cpu = cpuSeconds() - cpuStart
        let records = try await datastore.latestUpdateID() - before
        guard try cache.statistics().keyCount == total + 10 else {
            throw ValidationError("\(total) concurrent sets did not leave \(total) keys in the state")
        }
        let note = "\(tasks) tasks x \(taskSets) single-key sets (distinct keys) on one SharedCache through \(name), \(mode): "
            + "\(records) records for \(total) sets; " + String(format: "per set p50 %.0f us, p99 %.0f us", latencies.p50, latencies.p99)
        Measurement(metric: "set_keys_per_s", value: Double(total) / elapsed, unit: "keys/s", keys: total, transactionKeys: 1,
                    cpuNanosecondsPerOperation: cpu * 1e9 / Double(total), note: note).emit()

        let lone = try await SetWorkloads.sequential(on: cache, count: loneSets, firstKey: total)
        let loneNote = "\(loneSets) sequential single-key sets of one task through \(name), \(mode); "
            + String(format: "mean %.0f us = %.0f sets/s", lone.mean, 1e6 / lone.mean)
        Measurement(metric: "set_latency_us", value: lone.p50, unit: "us", keys: loneSets, note: "p50; " + loneNote).emit()
        Measurement(metric: "set_latency_us", value: lone.p99, unit: "us", keys: loneSets, note: "p99; " + loneNote).emit()
    }
}
