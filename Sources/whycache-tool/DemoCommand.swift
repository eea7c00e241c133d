import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool demo`: a change log in a file datastore, two "machines"
/// (state files), reader processes that never lock, a follower that calls
/// `update()`, and a writer whose sets propagate to all of them; rates and
/// propagation delays are printed as they happen. Everything lives in a
/// temporary folder that is removed at the end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show writes propagating through a file datastore to reader processes on two state files (cleans up after itself).")

    @Option(name: .long, help: "Reader processes on machine A (they never call update()).")
    var readers = 2

    @Option(name: .long, help: "Seconds to run.")
    var seconds = 6

    @Option(name: .long, help: "Keys in the demo data set.")
    var keys = 100_000

    func run() async throws {
        let folder = "\(scratchFolder())/whycache-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let storePath = folder + "/log"
        let machineA = folder + "/machine-a.state"
        let machineB = folder + "/machine-b.state"
        print("WhyCache demo in \(folder)")
        print("  change log: file datastore \(storePath)")
        print("  machine A:  \(machineA) — \(readers) reader process(es) and 1 writer process")
        print("  machine B:  \(machineB) — 1 follower process that calls update()")

        let store = try FileDatastore(directory: storePath)
        try await store.createIfMissing()
        let cache = try SharedCache(statePath: machineA, datastore: store)
        var start = monotonicSeconds()
        let loaded = try await cache.set(contentsOf: (0..<keys).map { index in
            (key: Array("config/item-\(index)".utf8), value: Array("v0".utf8))
        })
        print(String(format: "loaded %d keys as %d log records (at most 1 MiB each) in %.0f ms", keys, loaded, (monotonicSeconds() - start) * 1000))
        let other = try SharedCache(statePath: machineB, datastore: store)
        start = monotonicSeconds()
        let replay = try await other.update()
        print(String(format: "machine B replayed them from the log in %.0f ms (%d records, %d keys)",
                     (monotonicSeconds() - start) * 1000, replay.recordsApplied, replay.operationsApplied))

        var workers: [(name: String, arguments: [String])] = []
        for index in 0..<readers {
            workers.append(("A reader \(index + 1)", ["--role", "reader", "--state", machineA]))
        }
        workers.append(("B follower", ["--role", "follower", "--state", machineB]))
        workers.append(("A writer  ", ["--role", "writer", "--state", machineA]))
        try runWorkers(workers.map { worker in
            (worker.name, ["demo-worker", "--store", storePath, "--seconds", String(seconds), "--keys", String(keys)] + worker.arguments)
        })

        try await other.update()
        let a = try cache.entries()
        let b = try other.entries()
        let equal = a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        print("done: log at update \(try await store.latestUpdateID()); machine A at \(try cache.updateID()), machine B at \(try other.updateID()); "
              + "\(a.count) keys each, \(equal ? "identical" : "DIFFERENT")")
        if !equal { throw ExitCode(1) }
    }

    /// Runs the worker processes, prefixing each output line with its name.
    private func runWorkers(_ workers: [(name: String, arguments: [String])]) throws {
        let printer = DispatchQueue(label: "demo.output")
        let group = DispatchGroup()
        let failed = Locked(false)
        for (name, arguments) in workers {
            let process = Process()
            let pipe = Pipe()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            process.arguments = arguments
            process.standardOutput = pipe
            try process.run()
            group.enter()
            Thread.detachNewThread {
                let handle = pipe.fileHandleForReading
                var pending = Data()
                while case let chunk = handle.availableData, !chunk.isEmpty {
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: 0x0A) {
                        let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                        pending = Data(pending[(newline + 1)...])
                        printer.sync { print("\(name) | \(line)") }
                    }
                }
                process.waitUntilExit()
                if process.terminationStatus != 0 { failed.withLock { $0 = true } }
                group.leave()
            }
        }
        group.wait()
        if failed.withLock({ $0 }) { throw ValidationError("a demo process failed") }
    }
}

/// One process of the demo (internal).
struct DemoWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-worker", abstract: "A demo process (internal).", shouldDisplay: false)

    @Option var role: String
    @Option var store: String
    @Option var state: String
    @Option var seconds: Int
    @Option var keys: Int

    /// The key the writer stamps with the wall-clock time of each write.
    static let stampKey = Array("demo/last-write".utf8)

    func run() async throws {
        let datastore = try await FileDatastore.open(directory: store)
        let cache = try SharedCache(statePath: state, datastore: datastore)
        let end = monotonicSeconds() + Double(seconds)
        switch role {
        case "writer": try await write(cache, until: end)
        case "reader", "follower": try await read(cache, until: end, following: role == "follower")
        default: throw ValidationError("unknown role \(role)")
        }
    }

    /// Sets one item plus the time stamp per write, about 200 writes a second.
    private func write(_ cache: SharedCache, until end: Double) async throws {
        var count = 0
        var latencies: [Double] = []
        var windowStart = monotonicSeconds()
        var last: UInt64 = 0
        while monotonicSeconds() < end {
            let started = monotonicSeconds()
            last = try await cache.set(contentsOf: [
                (key: Array("config/item-\(count % keys)".utf8), value: Array("v\(count + 1)".utf8)),
                (key: Self.stampKey, value: Array(String(Date().timeIntervalSince1970).utf8)),
            ])
            latencies.append((monotonicSeconds() - started) * 1e6)
            count += 1
            let now = monotonicSeconds()
            if now - windowStart >= 1 {
                latencies.sort()
                say(String(format: "%.0f sets/s, each visible on this machine when it returns (p50 %.0f µs, max %.0f µs); log at update %llu",
                           Double(latencies.count) / (now - windowStart), latencies[latencies.count / 2], latencies.last ?? 0, last))
                latencies.removeAll()
                windowStart = now
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Random gets; a follower also calls `update()` every 10 ms. Reports the
    /// rate and how old the newest write it sees is.
    private func read(_ cache: SharedCache, until end: Double, following: Bool) async throws {
        var random = SystemRandomNumberGenerator()
        let keyBytes = (0..<1000).map { _ in Array("config/item-\(Int.random(in: 0..<keys, using: &random))".utf8) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        var gets = 0
        var updates = 0
        var windowStart = monotonicSeconds()
        var lastUpdate = monotonicSeconds()
        while monotonicSeconds() < end {
            for key in keyBytes {
                _ = try cache.withValue(forKey: key) { value in value.map { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(64))) } }
            }
            gets += keyBytes.count
            let now = monotonicSeconds()
            if following && now - lastUpdate >= 0.01 {
                try await cache.update()
                updates += 1
                lastUpdate = now
            }
            if now - windowStart >= 1 {
                let stamp = try cache.value(forKey: Self.stampKey).flatMap { Double(String(decoding: $0, as: UTF8.self)) }
                let age = stamp.map { String(format: "%.1f ms", (Date().timeIntervalSince1970 - $0) * 1000) } ?? "none yet"
                say(String(format: "%.2f M gets/s%@; sees update %llu, newest write seen %@ old",
                           Double(gets) / (now - windowStart) / 1e6, following ? ", \(updates) update() calls" : ", no update() calls",
                           try cache.updateID(), age))
                gets = 0
                updates = 0
                windowStart = now
            }
            if gets == 0 { await Task.yield() }
        }
    }

    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
