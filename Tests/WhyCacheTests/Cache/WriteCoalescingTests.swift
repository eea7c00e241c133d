import Foundation
import Testing
@testable import WhyCache
import WhyCacheTestSupport

/// Write coalescing (``SharedCache/Configuration/coalescesWrites``): the
/// concurrent writes of one process share appends and records, and still each
/// caller gets the id of the record that holds its write, keeps its writes in
/// its order, reads them when the call returns, and gets exactly one outcome.
/// The shared checks run on MySQL too (`MySQLWriteCoalescingTests`).
@Suite struct WriteCoalescingTests {
    @Test func concurrentWritersLoseNothingAndKeepTheirOrder() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.concurrentWritersLoseNothingAndKeepTheirOrder(store: try await CacheFixture.makeStore(directory), directory: directory)
        }
    }

    @Test func aFailedAppendFailsEveryWriteGatheredInItAndTheNextAppendWorks() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.aFailedAppendFailsEveryWriteGatheredInIt(store: try await CacheFixture.makeStore(directory), directory: directory)
        }
    }

    @Test func aFailedApplyReportsEveryWriteAsWrittenWithItsOwnID() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.aFailedApplyReportsEveryWriteAsWritten(store: try await CacheFixture.makeStore(directory), directory: directory)
        }
    }

    @Test func theByteBoundLimitsWhatOneAppendGathers() async throws {
        try await withTemporaryDirectory { directory in
            let controlled = ControlledDatastore(wrapping: try await CacheFixture.makeStore(directory))
            // Every write below is one set of the same size; an append takes three.
            let size = try #require(try LogRecordSplitter().validate([.set(key: bytes("k00"), value: bytes("v00"))])).bodySize
            let cache = try Self.coalescingCache(directory, controlled) { $0.maximumCoalescedAppendBytes = 3 * size }
            let (first, followers) = try await Self.gather(
                cache, controlled, first: ("k00", "v00"), followers: (1...10).map { ("k\($0 < 10 ? "0" : "")\($0)", "v00") })
            controlled.releaseHeldAppend()
            #expect(await first.value == .success(1))
            var writesPerRecord: [UInt64: Int] = [:]
            for follower in followers { writesPerRecord[try await follower.value.get(), default: 0] += 1 }
            #expect(writesPerRecord.keys.sorted() == [2, 3, 4, 5])
            #expect(writesPerRecord.sorted { $0.key < $1.key }.map(\.value) == [3, 3, 3, 1])
            try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(controlled))
        }
    }

    @Test func aLoneWriterStillWritesOneSingleKeyRecordPerSet() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let cache = try Self.coalescingCache(directory, store)
            for index in 1...5 {
                #expect(try await cache.set(bytes("\(index)"), forKey: bytes("k")) == UInt64(index))
            }
            #expect(try await cache.write([]) == 5)  // nothing to write: the local update id
            for try await entry in store.records(after: 0) {
                #expect(try LogRecord(decoding: entry.payload).operations == [.set(key: bytes("k"), value: bytes("\(entry.updateID)"))])
            }
        }
    }

    /// The callers of an append come back with their next writes only after
    /// it was applied; the next append waits for them (up to
    /// `coalescingGatherWait`) instead of leaving with the first of them alone.
    @Test func theNextAppendGathersTheCallersOfThePreviousOne() async throws {
        // The writers must come back with their second writes within the
        // gather wait: they run on a thread of their own, never behind other
        // tests on the cooperative pool.
        let executor = ThreadTaskExecutor(name: "theNextAppendGathersTheCallersOfThePreviousOne")
        try await withTaskExecutorPreference(executor) { () async throws in
            try await nextAppendGathersTheCallersOfThePreviousOne(on: executor)
        }
    }

    private func nextAppendGathersTheCallersOfThePreviousOne(on executor: ThreadTaskExecutor) async throws {
        try await withTemporaryDirectory { directory in
            let controlled = ControlledDatastore(wrapping: try await CacheFixture.makeStore(directory))
            let cache = try Self.coalescingCache(directory, controlled) { $0.coalescingGatherWait = .seconds(1) }
            // Append 1 (one write) is held while four tasks queue their first writes.
            controlled.holdNextAppend()
            let first = Self.startSet(cache, ("first", "v"))
            await controlled.waitUntilAnAppendIsHeld()
            let tasks = (1...4).map { task in
                Task(executorPreference: executor) { () -> Result<[UInt64], CacheError> in
                    do throws(CacheError) {
                        let a = try await cache.set(bytes("v"), forKey: bytes("a/\(task)"))
                        let b = try await cache.set(bytes("v"), forKey: bytes("b/\(task)"))
                        return .success([a, b])
                    } catch {
                        return .failure(error)
                    }
                }
            }
            try await Self.waitUntil("four writes wait behind the held append") { cache.coalescer?.waitingWrites == 4 }
            // Append 2 gathers the four first writes; it is held for longer
            // than the gather wait, so the wait after it is a full second.
            controlled.holdNextAppend()
            controlled.releaseHeldAppend()
            #expect(await first.value == .success(1))
            await controlled.waitUntilAnAppendIsHeld()
            try await Task.sleep(for: .milliseconds(1_100))
            controlled.releaseHeldAppend()
            var ids: [[UInt64]] = []
            for task in tasks { ids.append(try await task.value.get()) }
            // Nobody waited when append 2 ended: the first of its callers back
            // led append 3 and gathered the other three.
            #expect(ids.map { $0[0] } == [2, 2, 2, 2])
            #expect(ids.map { $0[1] } == [3, 3, 3, 3])
            try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(controlled))
        }
    }

    @Test func aGatherWaitOutsideItsRangeIsRejected() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            for wait in [Duration.microseconds(-1), .milliseconds(1_001)] {
                #expect(throws: CacheError.invalidConfiguration(reason: "coalescingGatherWait must be between 0 and 1 s, not \(wait)")) {
                    try Self.coalescingCache(directory, store) { $0.coalescingGatherWait = wait }
                }
            }
        }
    }

    @Test func aByteBoundBelowOneIsRejected() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            #expect(throws: CacheError.invalidConfiguration(reason: "maximumCoalescedAppendBytes must be at least 1")) {
                try Self.coalescingCache(directory, store) { $0.maximumCoalescedAppendBytes = 0 }
            }
        }
    }

    // MARK: Checks shared with MySQL

    /// One write a task made, and the id the cache returned for it.
    struct MadeWrite: Sendable {
        let task: Int
        let operations: [LogOperation]
        let id: UInt64
    }

    /// 64 tasks each make 25 writes through one cache with coalescing on: sets
    /// and deletes of keys of their own and of keys every task writes, alone
    /// and several at once. The first append is held until every other task
    /// waits, so that at least one append gathers 63 writes.
    ///
    /// Checks: every returned id names a record that holds the whole write
    /// (or, on a compacting datastore, a single-key record that a later
    /// single-key record of the same key replaced); each task's ids increase;
    /// each task reads its own keys as it wrote them when the call returns;
    /// the state equals the writes applied in the order of their ids and
    /// their places in the records, and each task's own keys hold its last
    /// write of them; the log holds fewer records than writes; a fresh replay
    /// and a fresh state file equal the cache.
    static func concurrentWritersLoseNothingAndKeepTheirOrder(
        store: any Datastore, directory: String, tasks: Int = 64, writesPerTask: Int = 25
    ) async throws {
        let controlled = ControlledDatastore(wrapping: store)
        // Small records: a gathered append packs its writes into several.
        let cache = try coalescingCache(directory, controlled) { $0.maximumRecordSize = 1_024 }
        controlled.holdNextAppend()
        let made = try await withThrowingTaskGroup(of: [MadeWrite].self) { group in
            // Task 0's first write goes alone into the held append; every
            // other task's first write then waits behind it.
            group.addTask { try await makeWrites(task: 0, count: writesPerTask, on: cache) }
            await controlled.waitUntilAnAppendIsHeld()
            for task in 1..<tasks {
                group.addTask { try await makeWrites(task: task, count: writesPerTask, on: cache) }
            }
            try await waitUntil("\(tasks - 1) writes wait behind the held append") { cache.coalescer?.waitingWrites == tasks - 1 }
            controlled.releaseHeldAppend()
            return try await group.reduce(into: [MadeWrite]()) { $0 += $1 }
        }
        #expect(made.count == tasks * writesPerTask)

        // Each task's ids increase: its writes reached the log in its order.
        for task in 0..<tasks {
            let ids = made.filter { $0.task == task }.map(\.id)
            #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "task \(task): ids \(ids)")
        }

        // Every id names the record holding the write; place the writes in log order.
        var records: [UInt64: [LogOperation]] = [:]
        for try await entry in store.records(after: 0) {
            records[entry.updateID] = try LogRecord(decoding: entry.payload).operations
        }
        var placed: [(id: UInt64, offset: Int, write: MadeWrite)] = []
        for write in made {
            if let record = records[write.id] {
                let offset = offset(of: write.operations, in: record)
                #expect(offset != nil, "task \(write.task): \(write.operations) is not in record \(write.id)")
                placed.append((write.id, offset ?? 0, write))
            } else {
                // Only compaction removes a record: a single-key one, replaced
                // by a later single-key record of the same key.
                let key = write.operations.first?.key
                #expect(write.operations.count == 1, "record \(write.id) of a multi-key write is missing")
                #expect(records.contains { $0.key > write.id && $0.value.count == 1 && $0.value.first?.key == key },
                        "record \(write.id) is missing but no later single-key record replaces it")
                placed.append((write.id, 0, write))
            }
        }
        placed.sort { ($0.id, $0.offset) < ($1.id, $1.offset) }
        var model: [[UInt8]: [UInt8]] = [:]
        for entry in placed { apply(entry.write.operations, to: &model) }
        try CacheFixture.expectContents(cache, equal: model)

        // Each task's own keys hold its last write of them.
        for task in 0..<tasks {
            var own: [[UInt8]: [UInt8]] = [:]
            for write in made where write.task == task { apply(write.operations.filter { isOwn($0.key, of: task) }, to: &own) }
            for index in 0...4 {
                let key = ownKey(task, index)
                #expect(try cache.value(forKey: key) == own[key], "task \(task), \(String(decoding: key, as: UTF8.self))")
            }
        }

        // Fewer records than writes, and nothing lost on replay.
        #expect(try await store.latestUpdateID() < UInt64(made.count))
        #expect(try await CacheFixture.replay(store) == model)
        let fresh = try CacheFixture.makeCache(directory, store, name: "fresh")
        try await fresh.update()
        try CacheFixture.expectContents(fresh, equal: model)
    }

    /// One write is appended while ten others gather behind it; the append
    /// of the ten fails: each of them gets the same error, none of them is in
    /// the log or the state, and the writes after it succeed.
    static func aFailedAppendFailsEveryWriteGatheredInIt(store: any Datastore, directory: String) async throws {
        let controlled = ControlledDatastore(wrapping: store)
        let cache = try coalescingCache(directory, controlled)
        #expect(try await cache.set(bytes("v"), forKey: bytes("before")) == 1)
        let (first, followers) = try await gather(cache, controlled, first: ("first", "v"), followers: (0..<10).map { ("lost-\($0)", "v") })
        let injected = DatastoreError.requestFailed(operation: "append", reason: "failed by the test")
        controlled.failNextAppend(with: injected)
        controlled.releaseHeldAppend()
        #expect(await first.value == .success(2))
        for follower in followers {
            #expect(await follower.value == .failure(.datastore(injected)))
        }
        #expect(try await store.latestUpdateID() == 2)
        #expect(try cache.keys(in: .prefix(bytes("lost-"))).isEmpty)

        // The next appends work, alone and gathered.
        #expect(try await cache.set(bytes("v"), forKey: bytes("after")) == 3)
        #expect(try cache.value(forKey: bytes("after")) == bytes("v"))
        let (next, more) = try await gather(cache, controlled, first: ("next", "v"), followers: (0..<10).map { ("kept-\($0)", "v") })
        controlled.releaseHeldAppend()
        #expect(await next.value == .success(4))
        for follower in more { #expect(await follower.value == .success(5)) }
        #expect(try cache.keys(in: .prefix(bytes("kept-"))).count == 10)
        try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(store))
    }

    /// Ten writes are appended together but the local state cannot read the
    /// log: each write is reported as written, with the id of the record that
    /// holds it, and a later update applies them all.
    static func aFailedApplyReportsEveryWriteAsWritten(store: any Datastore, directory: String) async throws {
        let controlled = ControlledDatastore(wrapping: store)
        let cache = try coalescingCache(directory, controlled)
        let (first, followers) = try await gather(cache, controlled, first: ("first", "v"), followers: (0..<10).map { ("late-\($0)", "v") })
        controlled.failReads(with: .unavailable(reason: "failed by the test"))
        controlled.releaseHeldAppend()
        var outcomes = [await first.value]
        for follower in followers { outcomes.append(await follower.value) }
        var records: [UInt64: [LogOperation]] = [:]
        for try await entry in store.records(after: 0) {
            records[entry.updateID] = try LogRecord(decoding: entry.payload).operations
        }
        for (outcome, key) in zip(outcomes, ["first"] + (0..<10).map { "late-\($0)" }) {
            guard case .failure(.writtenButNotApplied(let id, _)) = outcome else {
                Issue.record("\(key): \(outcome) instead of writtenButNotApplied")
                continue
            }
            #expect(id == (key == "first" ? 1 : 2))
            #expect(records[id]?.contains(.set(key: bytes(key), value: bytes("v"))) == true, "\(key) is not in record \(id)")
        }
        #expect(try cache.value(forKey: bytes("late-0")) == nil)
        controlled.failReads(with: nil)
        #expect(try await cache.update().updateID == 2)
        #expect(try cache.keys(in: .prefix(bytes("late-"))).count == 10)
    }

    // MARK: Helpers

    /// A cache with coalescing on over `store`, configured further by `configure`.
    static func coalescingCache(
        _ directory: String, _ store: any Datastore, configure: (inout SharedCache.Configuration) -> Void = { _ in }
    ) throws -> SharedCache {
        var configuration = SharedCache.Configuration()
        configuration.coalescesWrites = true
        configure(&configuration)
        return try CacheFixture.makeCache(directory, store, configuration: configuration)
    }

    /// Starts the set `first` and holds its append; then starts the sets
    /// `followers` and returns once all of them wait for the next append
    /// (release the held one with ``ControlledDatastore/releaseHeldAppend()``).
    /// Each task's value is its set's outcome.
    static func gather(
        _ cache: SharedCache, _ controlled: ControlledDatastore, first: (key: String, value: String), followers: [(key: String, value: String)]
    ) async throws -> (first: Task<Result<UInt64, CacheError>, Never>, followers: [Task<Result<UInt64, CacheError>, Never>]) {
        controlled.holdNextAppend()
        let firstTask = startSet(cache, first)
        await controlled.waitUntilAnAppendIsHeld()
        let followerTasks = followers.map { startSet(cache, $0) }
        try await waitUntil("\(followers.count) writes wait behind the held append") { cache.coalescer?.waitingWrites == followers.count }
        return (firstTask, followerTasks)
    }

    /// A task setting `item.value` for `item.key`, whose value is the outcome.
    static func startSet(_ cache: SharedCache, _ item: (key: String, value: String)) -> Task<Result<UInt64, CacheError>, Never> {
        Task {
            do throws(CacheError) {
                return .success(try await cache.set(bytes(item.value), forKey: bytes(item.key)))
            } catch {
                return .failure(error)
            }
        }
    }

    /// Waits, without a deadline a run could miss, until `condition` holds;
    /// gives up (a failure) only after a minute.
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<60_000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("gave up waiting until \(what)")
        throw CancellationError()
    }

    /// Task `task`'s writes, made one after the other, each checked for
    /// read-your-writes on the task's own keys when it returns.
    static func makeWrites(task: Int, count: Int, on cache: SharedCache) async throws -> [MadeWrite] {
        var generator = SeededGenerator(seed: UInt64(task) &* 7_919 &+ 1)
        var made: [MadeWrite] = []
        for index in 0..<count {
            let operations = plannedWrite(task: task, index: index, using: &generator)
            let id: UInt64
            switch operations.count == 1 ? operations.first : nil {
            case .set(let key, let value)?: id = try await cache.set(value, forKey: key)
            case .delete(let key)?: id = try await cache.delete(key)
            case nil: id = try await cache.write(operations)
            }
            #expect(try cache.updateID() >= id)
            var written: [[UInt8]: [UInt8]?] = [:]
            for operation in operations where isOwn(operation.key, of: task) { written.updateValue(operation.value, forKey: operation.key) }
            for (key, value) in written {
                #expect(try cache.value(forKey: key) == value, "task \(task) does not read its write \(index)")
            }
            made.append(MadeWrite(task: task, operations: operations, id: id))
        }
        return made
    }

    /// The `index`th write of `task`: one set or delete of an own key, one set
    /// of a shared key, or several distinct keys at once. Every write holding
    /// a shared key holds a value no other write holds, so that the write can
    /// be found in its record unambiguously.
    static func plannedWrite(task: Int, index: Int, using generator: inout SeededGenerator) -> [LogOperation] {
        let value = bytes("t\(task)w\(index)")
        let own = ownKey(task, Int.random(in: 0..<4, using: &generator))
        let shared = bytes("shared/\(Int.random(in: 0..<6, using: &generator))")
        switch Int.random(in: 0..<10, using: &generator) {
        case 0..<3: return [.set(key: own, value: value)]
        case 3: return [.delete(key: own)]
        case 4..<6: return [.set(key: shared, value: value)]
        case 6..<8: return [.delete(key: shared), .set(key: own, value: value)]
        default:
            let last: LogOperation = index.isMultiple(of: 2) ? .set(key: ownKey(task, 4), value: value + bytes(".c")) : .delete(key: ownKey(task, 4))
            return [.set(key: own, value: value + bytes(".a")), .set(key: shared, value: value + bytes(".b")), last]
        }
    }

    /// The `index`th key of task `task`, which no other task writes.
    static func ownKey(_ task: Int, _ index: Int) -> [UInt8] { bytes("own/\(task)/\(index)") }

    /// Whether `key` is one of task `task`'s own keys.
    static func isOwn(_ key: [UInt8], of task: Int) -> Bool { key.starts(with: bytes("own/\(task)/")) }

    /// Where `block` lies in `record`, as a run of consecutive operations.
    static func offset(of block: [LogOperation], in record: [LogOperation]) -> Int? {
        guard block.count <= record.count else { return nil }
        return (0...(record.count - block.count)).first { start in record[start..<start + block.count].elementsEqual(block) }
    }

    /// Applies `operations` to `state`, in order.
    static func apply(_ operations: [LogOperation], to state: inout [[UInt8]: [UInt8]]) {
        for operation in operations { state[operation.key] = operation.value }
    }
}
