import ArgumentParser
import Foundation
import WhyCache

/// What a child process of `bench state` does.
enum BenchChildRole: String, Codable, ExpressibleByArgument {
    /// Random gets of existing keys (``BenchReader``).
    case reader
    /// Overwrites of random keys in transactions of 1000 (``BenchChildCommand``).
    case writer
}

/// What a benchmark child reports.
struct ChildResult: Codable {
    var role: BenchChildRole
    var operations: Double
    var seconds: Double
    var cpuSeconds: Double
    var operationsPerSecond: Double { operations / seconds }
    var nanosecondsPerOperation: Double { seconds * 1e9 / operations }
    var cpuNanosecondsPerOperation: Double { cpuSeconds * 1e9 / operations }
}

/// Random gets of existing keys, each value copied out into a local buffer.
enum BenchReader {
    static func run(
        file: SharedStateFile, keys: UInt32, shape: KeyShape = .user, seconds: Double, seed: UInt64, startAt: Double? = nil
    ) throws -> ChildResult {
        let buffers = WorkloadBuffers(valueCapacity: 128)
        defer { buffers.deallocate() }
        let (key, out) = (buffers.key, buffers.value)
        // Map every page of this process's view first (steady state, not first touch).
        try file.snapshot().visitEntries { _, value in
            blackHole(UInt64(value[0]))
            return true
        }
        if let startAt { while monotonicSeconds() < startAt { usleep(1000) } }
        var state = seed
        var operations = 0
        var sum: UInt64 = 0
        let cpuStart = cpuSeconds()
        let start = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            for _ in 0..<1024 {
                let keyLength = shape.makeKey(key.baseAddress!, Workload.random(below: keys, &state))
                guard let length = try file.copyValue(forKeyBytes: UnsafeRawBufferPointer(rebasing: key[..<keyLength]), into: out) else {
                    throw ValidationError("missing key in benchmark")
                }
                sum &+= UInt64(out[length - 1])
            }
            operations += 1024
            elapsed = monotonicSeconds() - start
        } while elapsed < seconds
        blackHole(sum)
        return ChildResult(role: .reader, operations: Double(operations), seconds: elapsed, cpuSeconds: cpuSeconds() - cpuStart)
    }
}

/// `whycache-tool bench child`: one reader or writer process of a benchmark
/// (started by `bench state`; prints one JSON object).
struct BenchChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "child", abstract: "A benchmark worker process (internal).", shouldDisplay: false)

    @Option var role: BenchChildRole
    @Option var state: String
    @Option var keys: Int
    @Option var keyShape: KeyShape = .user
    @Option var seconds: Double
    @Option var startAt: Double
    /// The writer's pace (0: as fast as it can).
    @Option var putsPerSecond = 0

    func run() throws {
        let file = try SharedStateFile.open(at: state)
        let result: ChildResult
        switch role {
        case .reader:
            result = try BenchReader.run(file: file, keys: UInt32(keys), shape: keyShape, seconds: seconds, seed: UInt64(getpid()), startAt: startAt)
        case .writer:
            result = try BenchWriter.run(file: file, keys: keys, shape: keyShape, seconds: seconds, startAt: startAt, putsPerSecond: putsPerSecond)
        }
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}

/// Overwrites of random keys in transactions of 1000, the writer beside
/// `bench state`'s readers.
enum BenchWriter {
    /// Overwrites random keys of the first `keys` in transactions of 1000,
    /// from `startAt` until `seconds` have passed; with `putsPerSecond`
    /// above 0, sleeping after a transaction that got ahead of that pace.
    static func run(
        file: SharedStateFile, keys: Int, shape: KeyShape = .user, seconds: Double, startAt: Double, putsPerSecond: Int = 0
    ) throws -> ChildResult {
        let buffers = WorkloadBuffers()
        defer { buffers.deallocate() }
        let (key, value) = (buffers.key, buffers.value)
        while monotonicSeconds() < startAt { usleep(1000) }
        var state: UInt64 = 777
        var version: UInt32 = 1
        var operations = 0
        let cpuStart = cpuSeconds()
        let start = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            let transaction = try file.beginWrite()
            for _ in 0..<1000 {
                let i = Workload.random(below: UInt32(keys), &state)
                let keyLength = shape.makeKey(key.baseAddress!, i)
                Workload.makeValue(value.baseAddress!, i, version: version)
                version &+= 1
                try transaction.setValue(
                    bytes: UnsafeRawBufferPointer(value), forKeyBytes: UnsafeRawBufferPointer(rebasing: key[..<keyLength]))
            }
            try transaction.commit()
            operations += 1000
            elapsed = monotonicSeconds() - start
            if putsPerSecond > 0 {
                let due = Double(operations) / Double(putsPerSecond)
                if due > elapsed { usleep(UInt32(min(1.0, due - elapsed) * 1e6)) }
                elapsed = monotonicSeconds() - start
            }
        } while elapsed < seconds
        return ChildResult(role: .writer, operations: Double(operations), seconds: elapsed, cpuSeconds: cpuSeconds() - cpuStart)
    }
}
