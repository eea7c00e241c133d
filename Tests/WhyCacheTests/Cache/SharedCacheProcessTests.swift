import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// The cache across real processes: many writers and machines converging on
/// one log, writers killed while appending, and updates killed midway.
@Suite(.serialized) struct SharedCacheProcessTests {
    static let seed: UInt64 = 0x5EED_CAC4E

    /// 4 writer processes × 2,000 random writes over 300 overlapping keys,
    /// through three "machines" (state files), each also followed by an
    /// updater process calling `update()` in a loop. Every writer checks
    /// read-your-writes after each write; at the end every machine equals a
    /// fresh replay of the log, key by key.
    @Test func writersAndMachinesConvergeOnTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            try await Self.writersAndMachinesConverge(store: store, storeSpec: directory + "/log", directory: directory)
        }
    }

    /// The same with `whycache-tool rewrite-history --through latest` run
    /// over and over while the writers write and the machines update: the
    /// machines that fall behind a rewrite rebuild from its checkpoint, and
    /// every machine ends equal to a fresh one built from the rewritten log.
    @Test func writersAndMachinesConvergeWhileHistoryIsRewritten() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            try await Self.writersAndMachinesConverge(
                store: store, storeSpec: directory + "/log", directory: directory,
                rewriting: ToolStore(arguments: ["--store", "file://\(directory)/log"]))
        }
    }

    /// How `whycache-tool` reaches a test's log.
    struct ToolStore {
        /// `--store` (and `--password-file`) options.
        var arguments: [String]
        /// Variables added to the tool's environment.
        var environment: [String: String] = [:]
    }

    /// The body of ``writersAndMachinesConvergeOnTheLog()`` for any datastore
    /// that the helper opens from `storeSpec`; state files go to `directory`.
    /// With `rewriting`, the tool rewrites the log's history in a loop while
    /// the writers run.
    static func writersAndMachinesConverge(
        store: any Datastore, storeSpec storePath: String, directory: String, rewriting: ToolStore? = nil
    ) async throws {
        let machines = (0..<3).map { directory + "/machine-\($0)" }
        let stopFile = directory + "/stop"
        let updaters = try machines.map { try HelperProcess(["cache-updater", storePath, $0, stopFile]) }
        let writers = try (0..<4).map { index in
            try HelperProcess(["cache-writer", storePath, machines[index % 3], "\(Self.seed + UInt64(index))", "2000", "300"])
        }
        var rewrites = 0
        if let rewriting {
            while writers.contains(where: { $0.process.isRunning }) {
                let rewrite = try await HelperProcess(
                    ["rewrite-history", "--through", "latest", "--scratch", directory] + rewriting.arguments,
                    executable: ToolRunner.executable, environment: rewriting.environment
                ).finish()
                // A server starved of CPU may time a connection out; that
                // rewrite changes nothing (it is crash-safe) and the next runs.
                if rewrite.status == 0 {
                    rewrites += 1
                } else {
                    #expect(rewrite.status == 3 && rewrite.errors.contains("datastore unavailable"), "rewrite: \(rewrite.errors)")
                }
                usleep(100_000)
            }
        }
        for (index, writer) in writers.enumerated() {
            let result = await writer.finish()
            #expect(result.status == 0, "writer \(index): \(result.errors)")
            #expect(result.lines.last?.hasPrefix("done 2000 ") == true)
        }
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let latest = try await store.latestUpdateID()
        #expect(latest >= 8_000)
        for (index, updater) in updaters.enumerated() {
            let result = await updater.finish()
            #expect(result.status == 0, "updater \(index): \(result.errors)")
            #expect(result.lines.last?.hasSuffix(" \(latest)") == true, "updater \(index) ended at \(result.lines)")
        }

        let expected: [[UInt8]: [UInt8]]
        if rewriting != nil {
            #expect(rewrites >= 2, "only \(rewrites) rewrites succeeded while the writers wrote")
            #expect(try await store.firstRetainedUpdateID() > 1)
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            expected = try CacheFixture.contents(fresh)
        } else {
            expected = try await CacheFixture.replay(store)
        }
        #expect(expected.count > 100)
        for machine in machines {
            let cache = try SharedCache(statePath: machine, datastore: store)
            #expect(try cache.updateID() == latest)
            #expect(try await cache.update().recordsApplied == 0)
            try CacheFixture.expectContents(cache, equal: expected)
            #expect(try SharedStateFile.open(at: machine).verify() == expected.count)
        }
    }

    /// Writer processes killed at random moments while they append: no
    /// acknowledged write is lost, no torn record is visible, and the next
    /// update on every machine converges.
    @Test func writersKilledWhileAppendingLoseNothingTheyAcknowledged() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            try await Self.writersKilledWhileAppending(store: store, storeSpec: directory + "/log", directory: directory)
        }
    }

    /// The body of ``writersKilledWhileAppendingLoseNothingTheyAcknowledged()``
    /// for any datastore that the helper opens from `storeSpec`.
    static func writersKilledWhileAppending(store: any Datastore, storeSpec storePath: String, directory: String) async throws {
        let machine = directory + "/machine"
        var generator = SeededGenerator(seed: Self.seed)
        var acknowledged: [(tag: String, index: Int, id: UInt64)] = []
        for round in 0..<12 {
            let writers = try (0..<2).map { try HelperProcess(["cache-set-forever", storePath, machine, "r\(round)w\($0)"]) }
            var printed: [[String]] = [[], []]
            for (number, writer) in writers.enumerated() {
                for _ in 0..<Int.random(in: 1...30, using: &generator) {
                    if let line = await writer.readLine() { printed[number].append(line) }
                }
            }
            usleep(UInt32.random(in: 0...5_000, using: &generator))
            for writer in writers { writer.send(SIGKILL) }
            for (number, writer) in writers.enumerated() {
                let result = await writer.finish()
                #expect(result.status == -SIGKILL, "round \(round): \(result.errors)")
                // Lines printed before the kill are acknowledged writes.
                for line in printed[number] + result.lines {
                    let fields = line.split(separator: " ")
                    guard fields.count == 3, fields[0] == "set", let index = Int(fields[1]), let id = UInt64(fields[2]) else { continue }
                    acknowledged.append(("r\(round)w\(number)", index, id))
                }
            }
        }
        #expect(acknowledged.count >= 24)

        let expected = try await CacheFixture.replay(store)
        for write in acknowledged {
            #expect(expected[bytes("\(write.tag)-\(write.index)-0")] != nil, "acknowledged write \(write) lost")
        }
        for cache in [try SharedCache(statePath: machine, datastore: store), try CacheFixture.makeCache(directory, store, name: "fresh")] {
            try await cache.update()
            #expect(try cache.updateID() == (try await store.latestUpdateID()))
            try CacheFixture.expectContents(cache, equal: expected)
        }
    }

    /// A process killed inside `update()`, again and again: after each kill
    /// the state is exactly the log replayed through the state's update id
    /// (a prefix of the log, never a half-applied record), and the next
    /// update finishes the job.
    @Test func anUpdateKilledMidwayLeavesAPrefixOfTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            var generator = SeededGenerator(seed: Self.seed)
            for batch in 0..<40 {
                let records = try (0..<500).map { record in
                    let operations: [LogOperation] = (0..<4).map { item in
                        let key = bytes("k\(Int.random(in: 0..<5_000, using: &generator))")
                        return item == 3 ? .delete(key: key) : .set(key: key, value: bytes("\(batch)-\(record)-\(item)"))
                    }
                    return try LogRecord(operations).encoded()
                }
                _ = try await store.append(contentsOf: records)
            }
            let latest = try await store.latestUpdateID()
            #expect(latest == 20_000)
            let machine = directory + "/machine"
            var positions: [UInt64] = []
            for round in 0..<8 {
                let updater = try HelperProcess(["cache-update", directory + "/log", machine, "400"])
                _ = await updater.readLine { $0 == "started" }
                // Kill soon after the update has committed something, however
                // slowly the machine runs it (a fixed delay missed every
                // update on a loaded machine).
                let before = positions.last ?? 0
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    if let file = try? SharedStateFile.open(at: machine), (try? file.updateID()).map({ $0 > before }) == true { break }
                    usleep(1_000)
                }
                usleep(UInt32.random(in: 0...20_000, using: &generator))
                updater.send(SIGKILL)
                await updater.finish()

                let file = try SharedStateFile.open(at: machine)
                let keyCount = try file.verify()
                let position = try file.updateID()
                positions.append(position)
                let snapshot = try file.snapshot()
                let actual = Dictionary(uniqueKeysWithValues: try snapshot.entries().map { ($0.key, $0.value) })
                snapshot.close()
                let expected = try await CacheFixture.replay(store, through: position)
                #expect(actual == expected, "round \(round): the state at \(position) is not the log's prefix")
                #expect(keyCount == expected.count)
            }
            #expect(positions.contains { $0 > 0 && $0 < latest }, "no kill landed inside an update: \(positions)")
            let cache = try SharedCache(statePath: machine, datastore: store)
            try await cache.update()
            #expect(try cache.updateID() == latest)
            try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(store))
        }
    }

    /// A write in one process is visible to another process on the same
    /// state file as soon as the write returns, without an update.
    @Test func aWriteIsVisibleToOtherProcessesWhenItReturns() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try CacheFixture.makeCache(directory, store)
            for round in 0..<5 {
                let id = try await cache.set(bytes("value-\(round)"), forKey: bytes("shared"))
                let lines = try await HelperProcess.run(["cache-get", directory + "/log", directory + "/state", "shared"])
                #expect(lines == ["value value-\(round)", "at \(id)"])
            }
        }
    }
}
