import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool demo`: several processes sharing one state file — readers
/// that never lock, one writer that commits transactions — with the rates
/// and the propagation of updates printed as they happen.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show reader processes and a writer process sharing one state file (cleans up after itself).",
        subcommands: [])

    @Option(name: .long, help: "Number of reader processes.")
    var readers = 3

    @Option(name: .long, help: "Seconds to run.")
    var seconds = 6

    @Option(name: .long, help: "Keys in the demo data set.")
    var keys = 100_000

    func run() throws {
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(folder)/whycache-demo-\(getpid()).state"
        defer { try? SharedStateFile.remove(at: path) }
        print("WhyCache demo: one shared-state file, \(readers) reader processes, 1 writer process")
        print("state file: \(path)")

        let file = try SharedStateFile.open(at: path)
        let start = monotonicSeconds()
        try file.write { transaction in
            for index in 0..<keys {
                try transaction.setValue(Array("v0".utf8), forKey: Array("config/item-\(index)".utf8))
            }
            try transaction.setUpdateID(0)
        }
        print(String(format: "loaded %d keys in one transaction in %.0f ms (%@)", keys, (monotonicSeconds() - start) * 1000,
                     ByteCountFormatter.string(fromByteCount: Int64(try file.statistics().fileSize), countStyle: .memory)))

        var workers: [(String, Process, Pipe)] = []
        for index in 0..<readers {
            workers.append(try spawn(name: "reader \(index + 1)", role: "reader", path: path))
        }
        workers.append(try spawn(name: "writer  ", role: "writer", path: path))
        let printer = DispatchQueue(label: "demo.output")
        let group = DispatchGroup()
        for (name, process, pipe) in workers {
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
                group.leave()
            }
        }
        group.wait()
        let final = try file.statistics()
        print("done: update id \(final.updateID), \(final.keyCount) keys, file \(final.fileSize) bytes, \(final.freeBytes) bytes free for reuse")
    }

    private func spawn(name: String, role: String, path: String) throws -> (String, Process, Pipe) {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["demo-worker", "--role", role, "--state", path, "--seconds", String(seconds), "--keys", String(keys)]
        process.standardOutput = pipe
        try process.run()
        return (name, process, pipe)
    }
}

/// One process of the demo (internal).
struct DemoWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-worker", abstract: "A demo process (internal).", shouldDisplay: false)

    @Option var role: String
    @Option var state: String
    @Option var seconds: Int
    @Option var keys: Int

    func run() throws {
        let file = try SharedStateFile.open(at: state)
        let end = monotonicSeconds() + Double(seconds)
        if role == "writer" {
            var update: UInt64 = 0
            var nextReport = monotonicSeconds() + 1
            while monotonicSeconds() < end {
                update += 1
                let committed = monotonicSeconds()
                try file.write { transaction in
                    for index in stride(from: Int(update) % 100, to: keys, by: 100) {
                        try transaction.setValue(Array("v\(update)".utf8), forKey: Array("config/item-\(index)".utf8))
                    }
                    try transaction.setUpdateID(update)
                }
                if monotonicSeconds() >= nextReport {
                    say(String(format: "committed update %d (%d keys in %.2f ms)", update, keys / 100, (monotonicSeconds() - committed) * 1000))
                    nextReport += 1
                }
                usleep(20_000)
            }
            return
        }
        var gets = 0
        var windowStart = monotonicSeconds()
        var lastSeen: UInt64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        var random = SystemRandomNumberGenerator()
        let keyBytes = (0..<1000).map { _ in Array("config/item-\(Int.random(in: 0..<keys, using: &random))".utf8) }
        while monotonicSeconds() < end {
            for key in keyBytes {
                _ = try key.withUnsafeBytes { try file.copyValue(forKeyBytes: $0, into: buffer) }
            }
            gets += keyBytes.count
            let now = monotonicSeconds()
            if now - windowStart >= 1 {
                let snapshot = try file.snapshot()
                let seen = snapshot.updateID
                let lag = Double(Int64(bitPattern: UInt64(Date().timeIntervalSince1970 * 1e9) &- snapshot.commitTimeNanoseconds)) / 1e6
                snapshot.close()
                say(String(format: "%.2f M gets/s, sees update %d (%+d since last report, committed %.1f ms ago)",
                           Double(gets) / (now - windowStart) / 1e6, seen, Int(seen) - Int(lastSeen), lag))
                lastSeen = seen
                gets = 0
                windowStart = now
            }
        }
    }

    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
