import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench update`: replaying logs from the file datastore into
/// an empty state, and the latency of single-key sets.
struct BenchUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Replay logs from the file datastore into an empty state (apply rates) and time single-key sets.")

    @Option(name: .long, help: "Keys N: the single-key log has N records, the batched log N/1000 records of 1000 keys.")
    var keys = 1_000_000

    @Option(name: .long, help: "Single-key sets timed for set_latency_us.")
    var sets = 5_000

    @Option(name: .long, help: "Folder for the logs and state files (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    @Option(name: .long, help: "fsync policy of the file datastore for the set latency: always or never.")
    var sync = "always"

    func run() async throws {
        try await BenchProgress.run("bench update") { try await withBenchFolder("update", in: directory) { try await measure(in: $0) } }
    }

    private func measure(in folder: String) async throws {
        let order = Workload.permutation(UInt32(keys))

        for recordKeys in [1, 1000] {
            let store = try FileDatastore(directory: "\(folder)/log-\(recordKeys)", options: FileDatastoreOptions(syncPolicy: .never))
            try await store.createIfMissing()
            let records = try await Self.fill(store, order: order, keysPerRecord: recordKeys)
            let cache = try SharedCache(statePath: "\(folder)/state-\(recordKeys)", datastore: store)
            let start = monotonicSeconds()
            let summary = try await cache.update()
            let elapsed = monotonicSeconds() - start
            guard summary.recordsApplied == records, summary.operationsApplied == keys else {
                throw ValidationError("applied \(summary.recordsApplied) records / \(summary.operationsApplied) keys")
            }
            let note = "\(records) records of \(recordKeys) key(s) from the file datastore into an empty state, \(summary.transactionsCommitted) transaction(s)"
            Measurement(metric: "apply_records_per_s", value: Double(records) / elapsed, unit: "records/s", keys: keys,
                        transactionKeys: recordKeys, note: note).emit()
            Measurement(metric: "apply_keys_per_s", value: Double(keys) / elapsed, unit: "keys/s", keys: keys,
                        transactionKeys: recordKeys, note: note).emit()
            cache.close()
        }
        try await setLatency(folder: folder)
    }

    /// Appends `order.count / keysPerRecord` records of workload W to `store`
    /// (untimed), about 10,000 keys per append call, and returns how many.
    /// The keys get their values at `version`. `bench mysql` fills its MySQL
    /// logs with it too, `bench bootstrap` its catch-up records.
    static func fill(_ store: any Datastore, order: [UInt32], keysPerRecord: Int, version: UInt32 = 0) async throws -> Int {
        let buffers = WorkloadBuffers()
        defer { buffers.deallocate() }
        let (key, value) = (buffers.key, buffers.value)
        var batch: [[UInt8]] = []
        var records = 0
        var operations: [LogOperation] = []
        for i in order {
            Workload.makeKey(key.baseAddress!, i)
            Workload.makeValue(value.baseAddress!, i, version: version)
            operations.append(.set(key: Array(key[..<Workload.keyLength]), value: Array(value)))
            if operations.count == keysPerRecord {
                batch.append(try LogRecord(operations).encoded())
                operations.removeAll(keepingCapacity: true)
                records += 1
                if batch.count * keysPerRecord >= 10_000 {
                    _ = try await store.append(contentsOf: batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        if !batch.isEmpty { _ = try await store.append(contentsOf: batch) }
        return records
    }

    /// Times `sets` single-key sets (append, then apply through the returned id).
    private func setLatency(folder: String) async throws {
        guard let policy: FileDatastoreOptions.SyncPolicy = sync == "always" ? .always : sync == "never" ? .never : nil else {
            throw ValidationError("--sync must be always or never")
        }
        let store = try FileDatastore(directory: "\(folder)/log-sets", options: FileDatastoreOptions(syncPolicy: policy))
        try await store.createIfMissing()
        let cache = try SharedCache(statePath: "\(folder)/state-sets", datastore: store)
        let value = Array(repeating: UInt8(ascii: "v"), count: Workload.valueLength)
        var latencies: [Double] = []
        latencies.reserveCapacity(sets)
        for index in 0..<sets {
            let key = Array("user:\(String(index % 1_000_000 + 100_000_000).dropFirst())".utf8)
            let start = monotonicSeconds()
            try await cache.set(value, forKey: key)
            latencies.append((monotonicSeconds() - start) * 1e6)
        }
        latencies.sort()
        let p50 = latencies[latencies.count / 2]
        let p99 = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
        let note = "\(sets) sequential single-key sets through the file datastore (sync \(sync)), each returning after the local apply"
        Measurement(metric: "set_latency_us", value: p50, unit: "us", keys: sets, note: "p50; " + note).emit()
        Measurement(metric: "set_latency_us", value: p99, unit: "us", keys: sets, note: "p99; " + note).emit()
    }
}
