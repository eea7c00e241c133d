import Foundation
import Testing
import WhyCacheTestSupport
@testable import WhyCache

/// ``SortedStateBuilder``: the external merge sort that builds a history
/// rewrite's scratch state in key order.
@Suite struct SortedStateBuilderTests {
    /// Random sets, deletes and multi-key records over a small key space,
    /// with runs of a few kilobytes (so dozens of runs are merged, and most
    /// keys appear in many of them): the built state equals a replay of the
    /// log through the limit, at the limit, marked initialized, and the run
    /// files are gone.
    @Test(arguments: [1 << 10, 16 << 10, 32 << 20])
    func theBuiltStateEqualsAReplay(runBudget: Int) async throws {
        try await withTemporaryDirectory { directory in
            let log = ModelledLog(store: try await CacheFixture.makeStore(directory))
            var generator = SeededGenerator(seed: UInt64(runBudget))
            var modelAtLimit: [[UInt8]: [UInt8]] = [:]
            for record in 0..<600 {
                let operations: [LogOperation] = (0..<Int.random(in: 1...4, using: &generator)).map { _ in
                    let key = bytes("key-\(Int.random(in: 0..<150, using: &generator))")
                    return Int.random(in: 0..<4, using: &generator) == 0
                        ? .delete(key: key) : .set(key: key, value: bytes(String(repeating: "v", count: Int.random(in: 0..<40, using: &generator))))
                }
                try await log.write(operations)
                if record == 499 { modelAtLimit = log.model }
            }
            let file = try SharedStateFile.open(at: directory + "/scratch")
            var builder = SortedStateBuilder(datastore: log.store, configuration: SharedCache.Configuration())
            builder.runBudget = runBudget
            builder.releaseInterval = 4 << 10
            let built = try await builder.build(into: file, from: nil, through: 500, runPrefix: directory + "/scratch.run")
            #expect(built.position == 500)
            #expect(built.logRecords == 500)
            let view = try file.snapshot()
            defer { view.close() }
            #expect(view.updateID == 500 && view.isInitialized)
            let entries = try view.entries()
            #expect(Dictionary(uniqueKeysWithValues: entries.map { ($0.key, $0.value) }) == modelAtLimit)
            #expect(try file.verify() == modelAtLimit.count)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".run") }.isEmpty)
        }
    }

    /// Runs of several megabytes, read back through the readers' 1 MiB
    /// buffers (entries straddle buffer refills), with values up to 64 KiB.
    @Test func runsLargerThanTheReadBufferMergeCorrectly() async throws {
        try await withTemporaryDirectory { directory in
            let log = ModelledLog(store: try await CacheFixture.makeStore(directory))
            var generator = SeededGenerator(seed: 0xB16)
            for round in 0..<3 {
                for batch in 0..<40 {
                    try await log.write((0..<100).map { item in
                        let size = item == 0 ? 64 << 10 : Int.random(in: 100..<2_000, using: &generator)
                        return .set(key: bytes("k\((batch * 100 + item) * 7 % 4_000)"), value: [UInt8](repeating: UInt8(round), count: size))
                    })
                }
            }
            let limit = try await log.store.latestUpdateID()
            let file = try SharedStateFile.open(at: directory + "/scratch")
            var builder = SortedStateBuilder(datastore: log.store, configuration: SharedCache.Configuration())
            builder.runBudget = 3 << 20
            _ = try await builder.build(into: file, from: nil, through: limit, runPrefix: directory + "/scratch.run")
            let view = try file.snapshot()
            defer { view.close() }
            #expect(Dictionary(uniqueKeysWithValues: try view.entries().map { ($0.key, $0.value) }) == log.model)
        }
    }

    /// A corrupt record stops the build with `corruptRecord` naming it, and
    /// leaves no run file behind.
    @Test func aCorruptRecordIsATypedError() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            _ = try await store.append(try LogRecord([.set(key: bytes("a"), value: bytes("1"))]).encoded())
            _ = try await store.append([0xFF, 0x00, 0x01])
            let file = try SharedStateFile.open(at: directory + "/scratch")
            var builder = SortedStateBuilder(datastore: store, configuration: SharedCache.Configuration())
            builder.runBudget = 1
            await #expect {
                try await builder.build(into: file, from: nil, through: 2, runPrefix: directory + "/scratch.run")
            } throws: { error in
                guard case CacheError.corruptRecord(let id, _) = error else { return false }
                return id == 2
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".run") }.isEmpty)
        }
    }
}
