import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench state`: workload W against the shared-state file.
struct BenchStateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Workload W (keys user:%08d, or another --key-shape; 100-byte values) against the shared-state file.")

    @Option(name: .long, help: "Number of keys N.")
    var keys = 1_000_000

    @Option(name: .long, help: "The keys: user (workload W, user:%08d), random16 (16 random bytes) or url (/api/v1/users/<i>/settings).")
    var keyShape = KeyShape.user

    @Option(name: .long, help: "Folder for the state files (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    @Option(name: .long, help: "Seconds per read measurement.")
    var seconds = 3.0

    @Flag(name: .long, help: "Skip the 20x overwrite space check (the slowest part).")
    var skipOverwrite = false

    @Option(name: .long, help: "Rounds of the multi-process measurements (one reader, two readers, a reader under a writer, in turn); the medians are reported.")
    var rounds = 3

    @Option(name: .long, help: "Puts per second of the writer beside the reader (it sleeps after each 1000-put transaction to keep the pace; 0: as fast as it can). To compare get_under_writer_fraction with another store at the same write load.")
    var writerRate = 0

    @Option(name: .long, help: "During the loads, announce each key this many operations ahead so that its path is prefetched, as the log replay does (0: no announcements).")
    var lookahead = WriteTransaction.pathPrefetchDistance

    @Option(name: .long, help: "The order of the loads: permutation (the anchors' random order, the default) or key (ascending keys, as a restore from a snapshot inserts them).")
    var loadOrder: LoadOrder = .permutation

    /// The order in which the loads insert the keys.
    enum LoadOrder: String, ExpressibleByArgument {
        /// The anchors' Fisher-Yates permutation (``Workload/permutation(_:)``).
        case permutation
        /// Ascending keys (``KeyShape/keyOrder(_:)``).
        case key
    }

    @Flag(name: .long, help: "After the loads, rewrite the file in key order (as rewrite-state does) and measure the rewritten file; reports rewrite_keys_per_s.")
    var rewrite = false

    func run() throws {
        try BenchProgress.run("bench state") { try measure() }
    }

    private func measure() throws {
        let folder = directory ?? scratchFolder()
        // State files of benchmarks that were killed (140 MB each at the
        // default size, in memory when the folder is /dev/shm) go first.
        AbandonedFiles.remove(in: folder, prefix: "whycache-bench-")
        let path = "\(folder)/whycache-bench-\(getpid()).state"
        defer { try? SharedStateFile.remove(at: path) }
        let n = UInt32(keys)
        let order = loadOrder == .key ? keyShape.keyOrder(n) : Workload.permutation(n)

        // Load in one transaction, then in batches of 1000.
        try? SharedStateFile.remove(at: path)
        let batched = try load(path: path + ".batched", order: order, batch: 1000)
        try? SharedStateFile.remove(at: path + ".batched")
        Measurement(metric: "load_keys_per_s", value: batched, unit: "keys/s", keys: keys, keyShape: keyShape.rawValue, transactionKeys: 1000, note: "\(loadOrder.rawValue) order, keys announced \(lookahead) ahead").emit()
        let single = try load(path: path, order: order, batch: 0)
        Measurement(metric: "load_keys_per_s", value: single, unit: "keys/s", keys: keys, keyShape: keyShape.rawValue, transactionKeys: keys, note: "\(loadOrder.rawValue) order, keys announced \(lookahead) ahead").emit()
        if rewrite {
            let start = monotonicSeconds()
            let summary = try StateFileRewriter().rewrite(at: path)
            Measurement(
                metric: "rewrite_keys_per_s", value: Double(summary.keyCount) / (monotonicSeconds() - start), unit: "keys/s", keys: keys,
                keyShape: keyShape.rawValue, note: "heap \(summary.bytesBefore) -> \(summary.bytesAfter) bytes; what follows measures the rewritten file"
            ).emit()
        }
        let file = try SharedStateFile.open(at: path)
        let loaded = try file.statistics()
        let loadedSize = loaded.fileSize
        Measurement(
            metric: "file_bytes_per_key", value: Double(loadedSize) / Double(keys), unit: "bytes", keys: keys, keyShape: keyShape.rawValue,
            note: "heap \(loaded.heapBytes) bytes, free \(loaded.freeBytes), retired \(loaded.retiredBytes)"
        ).emit()

        // Reads in this process.
        let scan = try scanNanosecondsPerKey(file)
        let get = try BenchReader.run(file: file, keys: n, shape: keyShape, seconds: seconds, seed: 1000)
        Measurement(metric: "get_ns", value: get.nanosecondsPerOperation, unit: "ns", keys: keys, keyShape: keyShape.rawValue,
                    cpuNanosecondsPerOperation: get.cpuNanosecondsPerOperation).emit()
        Measurement(metric: "scan_ns_per_key", value: scan, unit: "ns", keys: keys, keyShape: keyShape.rawValue).emit()

        // Reads in separate processes, in rounds: one reader alone, two
        // readers, a reader under a writer, one after the other, so that each
        // ratio compares runs taken moments apart (on a shared VM the speed
        // of a lone reader drifts by a third between minutes). The medians of
        // the per-round values are reported.
        var alone: [ChildResult] = []
        var pairs: [[ChildResult]] = []
        var contended: [[ChildResult]] = []
        for _ in 0..<max(1, rounds) {
            alone.append(try runChildren(path: path, roles: [.reader])[0])
            pairs.append(try runChildren(path: path, roles: [.reader, .reader]))
            contended.append(try runChildren(path: path, roles: [.reader, .writer]))
        }
        let pairTotals = pairs.map { $0.reduce(0) { $0 + $1.operationsPerSecond } }
        let scaling = median(zip(pairTotals, alone).map { $0 / $1.operationsPerSecond })
        Measurement(metric: "get_2proc_total_mops", value: median(pairTotals) / 1e6, unit: "Mops/s", keys: keys, keyShape: keyShape.rawValue,
                    note: "scaling \(String(format: "%.2f", scaling))x over one reader process (median of \(alone.count) rounds; per round \(Self.list(zip(pairTotals, alone).map { $0 / $1.operationsPerSecond })))").emit()
        let fractions = zip(contended, alone).map { $0[0].operationsPerSecond / $1.operationsPerSecond }
        let writerRates = contended.map { $0[1].operationsPerSecond }
        Measurement(metric: "get_under_writer_fraction", value: median(fractions), unit: "ratio", keys: keys, keyShape: keyShape.rawValue,
                    note: "median of \(fractions.count) rounds \(Self.list(fractions)); reader alone \(Int(median(alone.map(\.nanosecondsPerOperation)))) ns/get, under the writer \(Int(median(contended.map { $0[0].nanosecondsPerOperation }))) ns/get; writer \(Int(median(writerRates))) puts/s in 1000-put transactions\(writerRate > 0 ? " (paced at \(writerRate) puts/s)" : "")").emit()

        if !skipOverwrite {
            let ratio = try overwriteRatio(file: file, keys: n, rounds: 20, loadedSize: loadedSize)
            Measurement(metric: "overwrite_20x_file_ratio", value: ratio, unit: "ratio", keys: keys, keyShape: keyShape.rawValue,
                        note: "file size after overwriting every key 20 times (batches of 1000) / after the first load").emit()
        }
    }

    /// Loads every key in `order`, committing every `batch` keys (0: one transaction).
    private func load(path: String, order: [UInt32], batch: Int) throws -> Double {
        let file = try SharedStateFile.open(at: path)
        let start = monotonicSeconds()
        try Workload.write(order, shape: keyShape, version: 0, into: file, batch: batch, lookahead: lookahead, updateID: 1)
        return Double(order.count) / (monotonicSeconds() - start)
    }

    /// Full ordered iteration with every value copied out: one warm-up pass,
    /// then the best of three.
    private func scanNanosecondsPerKey(_ file: SharedStateFile) throws -> Double {
        var best = Double.infinity
        let out = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8)
        defer { out.deallocate() }
        for pass in 0..<4 {
            let snapshot = try file.snapshot()
            var count = 0
            var sum: UInt64 = 0
            let start = monotonicSeconds()
            try snapshot.visitEntries { key, value in
                out.copyMemory(from: value.baseAddress!, byteCount: min(value.count, 4096))
                sum &+= UInt64(out.load(fromByteOffset: count % 64, as: UInt8.self)) &+ UInt64(key[key.count - 1])
                count += 1
                return true
            }
            let elapsed = monotonicSeconds() - start
            blackHole(sum)
            snapshot.close()
            if pass > 0 { best = min(best, elapsed * 1e9 / Double(count)) }
        }
        return best
    }

    /// Overwrites every key `rounds` times in batches of 1000 and returns the
    /// final file size over `loadedSize`.
    private func overwriteRatio(file: SharedStateFile, keys: UInt32, rounds: Int, loadedSize: Int) throws -> Double {
        let order = Array(0..<keys)
        for round in 1...rounds {
            try Workload.write(order, shape: keyShape, version: UInt32(round), into: file, batch: 1000)
        }
        return Double(try file.statistics().fileSize) / Double(loadedSize)
    }

    private func median(_ values: [Double]) -> Double { Percentiles(values).p50 }

    private static func list(_ values: [Double]) -> String {
        "[" + values.map { String(format: "%.2f", $0) }.joined(separator: ", ") + "]"
    }

    /// Runs one child process per role, released at the same moment; returns
    /// their results in role order.
    private func runChildren(path: String, roles: [BenchChildRole]) throws -> [ChildResult] {
        let startAt = monotonicSeconds() + 1.5
        var processes: [(Process, Pipe)] = []
        for role in roles {
            let process = Process()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            process.arguments = [
                "bench", "child", "--role", role.rawValue, "--state", path, "--keys", String(keys), "--key-shape", keyShape.rawValue, "--seconds", String(seconds),
                "--start-at", String(startAt), "--puts-per-second", String(writerRate),
            ]
            process.standardOutput = output
            try process.run()
            processes.append((process, output))
        }
        var results: [ChildResult] = []
        for (process, output) in processes {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("benchmark child failed") }
            results.append(try JSONDecoder().decode(ChildResult.self, from: data))
        }
        return results
    }
}
