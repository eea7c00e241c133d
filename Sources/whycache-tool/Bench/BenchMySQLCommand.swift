import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool bench mysql`: workload W through a MySQL/MariaDB datastore —
/// single-key set latency, the set rate of concurrent writers and of batched
/// writes, and the rate at which an empty state replays a log from the server.
///
/// Every workload gets its own fresh log, named `<table>_<workload>` (default
/// `bench_<pid>_…`). The library cannot drop tables, so the logs stay on the
/// server; their names and a `DROP TABLE` statement are printed on stderr.
struct BenchMySQLCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "mysql",
        abstract: "Set latency, concurrent and batched set rates and replay rates through a MySQL/MariaDB datastore (leaves its tables on the server).")

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Single-key records (of distinct keys) in the replayed single-key log.")
    var records = 100_000

    @Option(name: .long, help: "1000-key records in the replayed batched log.")
    var batchedRecords = 1_000

    @Option(name: .long, help: "Sequential single-key sets timed for set_latency_us.")
    var sets = 2_000

    @Option(name: .long, help: "Concurrent writer tasks for the concurrent set rate.")
    var writers = 8

    @Option(name: .long, help: "Single-key sets per concurrent writer.")
    var writerSets = 1_000

    @Option(name: .long, help: "Sequential set(contentsOf:) calls of 1000 keys for the batched set rate.")
    var batches = 100

    @Option(name: .long, help: "Folder for the state files (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    @Flag(name: .long, help: "Turn single-key compaction (MySQLConfiguration.compactsSingleKeyRecords) off in every log, to measure what it costs.")
    var noSingleKeyCompaction = false

    @Option(name: .long, help: "Append transactions in flight (MySQLConfiguration.maximumConcurrentAppends; default: the library's).")
    var concurrentAppends: Int?

    @Option(name: .long, help: "Microseconds an append worker may wait for the callers of a returned transaction (MySQLConfiguration.appendGatherWait; default: the library's; 0: off).")
    var appendGatherWaitUs: Int?

    /// The workloads, each with its own log named `<table>_<suffix>`.
    private static let suffixes = ["sets", "writers", "batches", "replay1", "replay1000"]

    /// Keys per record of the batched workloads.
    private static let batchKeys = 1_000

    /// Rejects counts below 1.
    func validate() throws {
        try requireAtLeastOne([
            "records": records, "batched-records": batchedRecords, "sets": sets, "writers": writers, "writer-sets": writerSets, "batches": batches,
            "concurrent-appends": concurrentAppends ?? 1,
        ])
    }

    /// Runs the five workloads, each on a fresh log.
    func execute() async throws {
        try await BenchProgress.run("bench mysql") { try await withBenchFolder("mysql", in: directory) { try await measure(in: $0) } }
    }

    private func measure(in folder: String) async throws {
        guard case .mysql(let address) = try storeOptions.requireStore() else {
            throw ValidationError("bench mysql needs a mysql:// --store")
        }
        var base = try address.configuration(password: try storeOptions.password(), defaultTable: "bench_\(getpid())")
        if let appendGatherWaitUs {
            base.appendGatherWait = .microseconds(appendGatherWaitUs)
        }
        if let concurrentAppends {
            base.maximumConcurrentAppends = concurrentAppends
            base.poolSize = max(base.poolSize, concurrentAppends)
        }
        Self.reportTables(base, suffixes: Self.suffixes, command: "bench mysql")
        let compacting = !noSingleKeyCompaction

        try await setLatency(try await Self.freshLog(base, "sets", compacting: compacting), folder: folder)
        try await concurrentSets(try await Self.freshLog(base, "writers", compacting: compacting), folder: folder)
        try await batchedSets(try await Self.freshLog(base, "batches", compacting: compacting), folder: folder)
        try await replay(try await Self.freshLog(base, "replay1", compacting: compacting), records: records, keysPerRecord: 1, folder: folder)
        try await replay(try await Self.freshLog(base, "replay1000", compacting: compacting), records: batchedRecords, keysPerRecord: Self.batchKeys, folder: folder)
    }

    /// Creates the empty log `<table>_<suffix>`, with single-key compaction
    /// on or off; fails when it already holds records. `bench coalesce` uses
    /// it too.
    static func freshLog(_ base: MySQLConfiguration, _ suffix: String, compacting: Bool = true) async throws -> MySQLDatastore {
        var configuration = base
        configuration.table = try MySQLIdentifier("\(base.table.name)_\(suffix)")
        configuration.compactsSingleKeyRecords = compacting
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        let latest = try await store.latestUpdateID()
        guard latest == 0 else {
            throw ValidationError("\(store.configuration.location) already holds records through update \(latest); choose another --table")
        }
        return store
    }

    /// What the notes of the single-key workloads say about compaction.
    private var compaction: String {
        noSingleKeyCompaction ? "single-key compaction off" : "single-key compaction on"
    }

    /// Names the logs `<table>_<suffix>` that the benchmark `command`
    /// creates, on stderr (stdout carries only JSON).
    static func reportTables(_ base: MySQLConfiguration, suffixes: [String], command: String) {
        let tables = suffixes.flatMap { suffix in
            ["", "_meta", "_checkpoints", "_checkpoint_payloads"].map { "\(base.table.name)_\(suffix)\($0)" }
        }
        FileHandle.standardError.write(Data((
            "\(command): logs \(base.table.name)_{\(suffixes.joined(separator: ","))} in \(base.endpoint)/\(base.database); they stay on the server. "
                + "Drop them with: DROP TABLE IF EXISTS \(tables.joined(separator: ", "));\n").utf8))
    }

    /// Times `sets` sequential single-key sets of distinct keys, after ten
    /// untimed ones (the first connection and statement preparations).
    private func setLatency(_ store: MySQLDatastore, folder: String) async throws {
        let cache = try SharedCache(statePath: "\(folder)/state-sets", datastore: store)
        defer { cache.close() }
        _ = try await SetWorkloads.sequential(on: cache, count: 10, firstKey: sets)
        let summary = try await SetWorkloads.sequential(on: cache, count: sets)
        let note = "\(sets) sequential single-key sets (distinct keys) through MySQL, each returning after the local apply, \(compaction); "
            + String(format: "mean %.0f us = %.0f sets/s", summary.mean, 1e6 / summary.mean)
        Measurement(metric: "set_latency_us", value: summary.p50, unit: "us", keys: sets, note: "p50; " + note).emit()
        Measurement(metric: "set_latency_us", value: summary.p99, unit: "us", keys: sets, note: "p99; " + note).emit()
    }

    /// `writers` tasks of one process, each doing `writerSets` single-key sets
    /// of its own keys on one shared `SharedCache`, one record per set
    /// (coalescing off, as before it existed; `bench coalesce` compares).
    private func concurrentSets(_ store: MySQLDatastore, folder: String) async throws {
        var configuration = SharedCache.Configuration()
        configuration.coalescesWrites = false
        let cache = try SharedCache(statePath: "\(folder)/state-writers", datastore: store, configuration: configuration)
        defer { cache.close() }
        let (elapsed, summary) = try await SetWorkloads.concurrent(on: cache, writers: writers, setsPerWriter: writerSets)
        let total = writers * writerSets
        let logged = try await store.latestUpdateID()
        guard logged == UInt64(total) else { throw ValidationError("\(total) sets left \(logged) records in the log") }
        let note = "\(writers) concurrent writers: \(writers) tasks x \(writerSets) single-key sets (distinct keys) on one SharedCache in one process, \(compaction), coalescing off, "
            + "\(store.configuration.maximumConcurrentAppends) append(s) in flight, gather wait \(store.configuration.appendGatherWait); "
            + String(format: "per set p50 %.0f us, p99 %.0f us", summary.p50, summary.p99)
        Measurement(metric: "set_keys_per_s", value: Double(total) / elapsed, unit: "keys/s", keys: total, transactionKeys: 1, note: note).emit()
    }

    /// `batches` sequential `set(contentsOf:)` calls of 1000 distinct keys each.
    private func batchedSets(_ store: MySQLDatastore, folder: String) async throws {
        let cache = try SharedCache(statePath: "\(folder)/state-batches", datastore: store)
        defer { cache.close() }
        var latencies: [Double] = []
        latencies.reserveCapacity(batches)
        for batch in 0..<batches {
            let items = (0..<Self.batchKeys).map { Workload.item(UInt32(batch * Self.batchKeys + $0), version: 1) }
            let start = monotonicSeconds()
            try await cache.set(contentsOf: items)
            latencies.append((monotonicSeconds() - start) * 1e6)
        }
        let summary = Percentiles(latencies)
        let total = batches * Self.batchKeys
        let note = "batched \(Self.batchKeys) keys: \(batches) sequential set(contentsOf:) calls of \(Self.batchKeys) distinct keys (one record each); "
            + String(format: "per call p50 %.1f ms, p99 %.1f ms", summary.p50 / 1000, summary.p99 / 1000)
        Measurement(metric: "set_keys_per_s", value: Double(total) * 1e6 / summary.total, unit: "keys/s", keys: total,
                    transactionKeys: Self.batchKeys, note: note).emit()
    }

    /// Fills `store` (untimed) with `records` records of `keysPerRecord`
    /// distinct keys, then times one `update()` of an empty state.
    private func replay(_ store: MySQLDatastore, records: Int, keysPerRecord: Int, folder: String) async throws {
        let order = Workload.permutation(UInt32(records * keysPerRecord))
        let fillStart = monotonicSeconds()
        let written = try await BenchUpdateCommand.fill(store, order: order, keysPerRecord: keysPerRecord)
        let fillSeconds = monotonicSeconds() - fillStart
        let cache = try SharedCache(statePath: "\(folder)/state-replay-\(keysPerRecord)", datastore: store)
        defer { cache.close() }
        let start = monotonicSeconds()
        let summary = try await cache.update()
        let elapsed = monotonicSeconds() - start
        guard summary.recordsApplied == written, summary.operationsApplied == order.count else {
            throw ValidationError("applied \(summary.recordsApplied) records / \(summary.operationsApplied) keys")
        }
        var note = "\(written) records of \(keysPerRecord) key(s) from MySQL into an empty state, \(summary.transactionsCommitted) transaction(s); "
            + String(format: "filled untimed in %.1f s (%.0f records/s by append(contentsOf:) of 10,000 keys)", fillSeconds, Double(written) / fillSeconds)
        if keysPerRecord == 1 { note += noSingleKeyCompaction ? "; \(compaction)" : "; \(compaction), but distinct keys, so it removed nothing" }
        Measurement(metric: "apply_records_per_s", value: Double(written) / elapsed, unit: "records/s", keys: order.count,
                    transactionKeys: keysPerRecord, note: note).emit()
        Measurement(metric: "apply_keys_per_s", value: Double(order.count) / elapsed, unit: "keys/s", keys: order.count,
                    transactionKeys: keysPerRecord, note: note).emit()
    }
}

/// Percentiles of a list of samples: latencies, or per-round rates and ratios.
struct Percentiles {
    /// The samples, in ascending order.
    let sorted: [Double]

    /// Sorts `samples`.
    init(_ samples: [Double]) {
        sorted = samples.sorted()
    }

    /// The median.
    var p50: Double { percentile(50) }

    /// The 99th percentile.
    var p99: Double { percentile(99) }

    /// The sum of all latencies.
    var total: Double { sorted.reduce(0, +) }

    /// The mean.
    var mean: Double { sorted.isEmpty ? 0 : total / Double(sorted.count) }

    /// The sample below which `percent` % of the samples lie (0 when there are none).
    private func percentile(_ percent: Int) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, sorted.count * percent / 100)]
    }
}
