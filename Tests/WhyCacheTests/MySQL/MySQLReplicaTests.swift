import Foundation
import Testing
import WhyCache
import WhyCacheMySQL
import WhyCacheTestSupport

/// The test command's two replicas of its MariaDB server (parallel
/// optimistic replication), and helpers to read through them.
enum MySQLTestReplicas {
    /// The replicas, as servers a test can kill, freeze, restart and lag.
    static func servers() throws -> [PrivateMariaDB] {
        let ports = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_REPLICA_PORTS").split(separator: ",").compactMap { Int($0) }
        let directories = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_REPLICA_DIRS").split(separator: ",").map(String.init)
        guard ports.count == 2, directories.count == 2 else {
            throw MySQLTestFailure(description: "WHYCACHE_TEST_MYSQL_REPLICA_PORTS and _DIRS must each name two replicas")
        }
        return try zip(directories, ports).map { try PrivateMariaDB(directory: $0, port: $1) }
    }

    /// The primary's port.
    static func primaryPort() throws -> Int {
        guard let port = Int(try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT")) else {
            throw MySQLTestFailure(description: "WHYCACHE_TEST_MYSQL_PORT is not a number")
        }
        return port
    }

    /// The configuration of `table` read through both replicas with the
    /// tests' short lag and retry times.
    static func configuration(table: String) throws -> MySQLConfiguration {
        var configuration = try MySQLTestServer.configuration(table: table)
        configuration.replicas = .testPolicy(host: try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST"), ports: try servers().map(\.port))
        return configuration
    }

    /// Waits until every replica shows the primary's newest id of `table`.
    static func waitUntilCaughtUp(table: String, primary: MySQLDatastore) async throws {
        let latest = try await primary.latestUpdateID()
        for server in try servers() {
            var direct = try MySQLTestServer.configuration(table: table)
            direct.endpoint = .tcp(host: "127.0.0.1", port: server.port)
            let replica = try MySQLDatastore(configuration: direct)
            defer { Task { await replica.close() } }
            let deadline = ContinuousClock.now + .seconds(60)
            while (try? await replica.latestUpdateID()) != latest {
                guard ContinuousClock.now < deadline else { throw MySQLTestFailure(description: "replica \(server.port) did not catch up") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Runs `body` while both replicas' SQL threads are stopped (they keep
    /// receiving the primary's binary log but apply nothing), and starts
    /// them again afterwards, whatever happens.
    static func withReplicationPaused<R>(_ body: () async throws -> R) async throws -> R {
        let servers = try servers()
        for server in servers { try server.sql("STOP SLAVE SQL_THREAD") }
        do {
            let result = try await body()
            for server in servers { try server.sql("START SLAVE SQL_THREAD") }
            return result
        } catch {
            for server in servers { _ = try? server.sql("START SLAVE SQL_THREAD") }
            throw error
        }
    }

    /// Calls `update()` on `cache` until it reaches `target` (every update
    /// must succeed), at most for `seconds`; returns whether it got there.
    static func update(_ cache: SharedCache, until target: UInt64, seconds: Int = 60) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await cache.update().updateID >= target { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

/// Machines reading the log through MariaDB replicas: they lag but never
/// skip a record or move backwards, fail over when a replica dies, freezes
/// or falls behind, come back to it, survive history rewrites seen late,
/// and writers read their own writes.
@Suite(.serialized) struct MySQLReplicaTests {
    static let seed: UInt64 = 0x5EED_2EA1

    /// 3 writer processes (600 random writes each) and 3 follower processes,
    /// all reading through the replicas, on a log without compaction: every
    /// follower's change stream reports every update id once, in order, and
    /// every state equals the primary's log replayed.
    @Test func machinesReadingThroughReplicasConvergeAndNeverSkipARecord() async throws {
        let table = MySQLTestServer.uniqueTableName()
        var configuration = try MySQLTestServer.configuration(table: table)
        configuration.compactsSingleKeyRecords = false
        let primary = try MySQLDatastore(configuration: configuration)
        try await primary.createIfMissing()
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        let spec = "mysql:\(table)+replicas+nocompact"
        try await withTemporaryDirectory { directory in
            let stopFile = directory + "/stop"
            let followers = try (0..<3).map { try HelperProcess(["cache-follow-changes", spec, directory + "/machine-\($0)", stopFile]) }
            let writers = try (0..<3).map { index in
                try HelperProcess(["cache-writer", spec, directory + "/writer-\(index)", "\(Self.seed + UInt64(index))", "600", "200"])
            }
            for (index, writer) in writers.enumerated() {
                let result = await writer.finish()
                #expect(result.status == 0, "writer \(index): \(result.errors)")
            }
            // The stop file names the end of the log: a follower reading
            // through a lagging replica may need a few more polls to see it.
            let latest = try await primary.latestUpdateID()
            #expect(latest == 1_800)
            _ = FileManager.default.createFile(atPath: stopFile, contents: Data("\(latest)\n".utf8))
            for (index, follower) in followers.enumerated() {
                let result = await follower.finish()
                #expect(result.status == 0, "follower \(index): \(result.errors)")
                #expect(result.lines.last == "followed \(latest) \(latest) \(latest)", "follower \(index): \(result.lines.suffix(2))")
                // Polls went to the replicas. (How many depends on how far
                // the replicas lag behind the bound on a loaded machine: a
                // replica past it is left for the primary, which is correct.)
                let statements = result.lines.first { $0.hasPrefix("statements ") }?.split(separator: " ").compactMap { Int($0) } ?? []
                #expect(statements.count == 2 && statements[1] > 0, "follower \(index): \(statements)")
            }
            let expected = try await CacheFixture.replay(primary)
            #expect(expected.count > 50)
            for machine in (0..<3).map({ directory + "/machine-\($0)" }) + (0..<3).map({ directory + "/writer-\($0)" }) {
                let cache = try SharedCache(statePath: machine, datastore: primary)
                try await cache.update()
                #expect(try cache.updateID() == latest)
                try CacheFixture.expectContents(cache, equal: expected)
            }
        }
    }

    /// One replica is killed and the other frozen while two writer processes
    /// write (one of them reading through the replicas too): the machine's updates keep succeeding (from the primary),
    /// nothing acknowledged is lost, and once the replicas are back the
    /// machine reads from a replica again.
    @Test func machinesFailOverWhenReplicasDieOrFreezeAndComeBackToThem() async throws {
        let replicas = try MySQLTestReplicas.servers()
        let table = MySQLTestServer.uniqueTableName()
        let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
        try await primary.createIfMissing()
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        let store = try MySQLDatastore(configuration: try MySQLTestReplicas.configuration(table: table))
        try await withTemporaryDirectory { directory in
            let cache = try SharedCache(statePath: directory + "/machine", datastore: store)
            // One writer on the primary only, one reading its own writes
            // through the replicas as well: both keep writing throughout.
            let writers = try [("w0", "mysql:\(table)"), ("w1", "mysql:\(table)+replicas")].map { tag, spec in
                (tag, try HelperProcess(["cache-set-forever", spec, directory + "/writer-" + tag, tag]))
            }
            var acknowledged: [(tag: String, index: Int, id: UInt64)] = []
            func note(_ line: String, of tag: String) {
                let fields = line.split(separator: " ")
                if fields.count == 3, let index = Int(fields[1]), let id = UInt64(fields[2]) { acknowledged.append((tag, index, id)) }
            }
            func readAcknowledged(_ count: Int) {
                for (tag, writer) in writers {
                    for _ in 0..<count {
                        guard let line = writer.readLine() else { break }
                        note(line, of: tag)
                    }
                }
            }
            var newestAcknowledged: UInt64 { acknowledged.map(\.id).max() ?? 1 }
            readAcknowledged(20)
            #expect(try await MySQLTestReplicas.update(cache, until: newestAcknowledged))
            #expect(store.replicaStatus().contains { $0.isCurrent }, "\(store.replicaStatus())")

            try replicas[0].kill()
            try replicas[1].send(SIGSTOP)
            var restored = false
            defer {
                if !restored {
                    try? replicas[1].send(SIGCONT)
                    try? replicas[0].startReplica(of: try MySQLTestReplicas.primaryPort())
                }
            }
            readAcknowledged(20)
            #expect(try await MySQLTestReplicas.update(cache, until: newestAcknowledged))
            let left = store.replicaStatus()
            #expect(left.allSatisfy { !$0.isCurrent && $0.failuresInARow > 0 && $0.lastProblem != nil }, "\(left)")

            try replicas[1].send(SIGCONT)
            try replicas[0].startReplica(of: try MySQLTestReplicas.primaryPort())
            restored = true
            let readsBefore = store.replicaStatus().map(\.reads).reduce(0, +)
            let deadline = ContinuousClock.now + .seconds(60)
            var cameBack = false
            while ContinuousClock.now < deadline, !cameBack {
                readAcknowledged(1)
                try await cache.update()
                let status = store.replicaStatus()
                cameBack = status.contains { $0.isCurrent } && status.map(\.reads).reduce(0, +) > readsBefore
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(cameBack, "no replica serves reads again: \(store.replicaStatus())")

            for (tag, writer) in writers {
                writer.send(SIGKILL)
                let result = await writer.finish()
                #expect(result.status == -SIGKILL, "writer \(tag) stopped by itself: \(result.errors)")
                for line in result.lines { note(line, of: tag) }
            }
            #expect(Set(acknowledged.map(\.tag)) == ["w0", "w1"])
            let latest = try await primary.latestUpdateID()
            #expect(try await MySQLTestReplicas.update(cache, until: latest))
            // A commit a killed writer had sent may land after `latest` was
            // read; the state is compared with the log through its own position.
            let position = try cache.updateID()
            for write in acknowledged {
                #expect(try cache.value(forKey: Array("\(write.tag)-\(write.index)-0".utf8)) != nil, "acknowledged write \(write) lost")
            }
            try CacheFixture.expectContents(cache, equal: try await CacheFixture.replay(primary, through: position))
        }
        await store.close()
    }

    /// Both replicas stop applying (their SQL threads stopped): a machine
    /// reading through them sees no new record until they lag more than the
    /// bound, then reads from the primary and catches up; once replication
    /// runs again, reads go back to a replica.
    @Test func aReplicaThatLagsPastTheBoundIsLeftAndUsedAgainOnceItCatchesUp() async throws {
        let table = MySQLTestServer.uniqueTableName()
        let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
        try await primary.createIfMissing()
        _ = try await primary.append(contentsOf: [try LogRecord([.set(key: Array("k".utf8), value: Array("0".utf8))]).encoded()])
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        let store = try MySQLDatastore(configuration: try MySQLTestReplicas.configuration(table: table))
        try await withTemporaryDirectory { directory in
            let cache = try SharedCache(statePath: directory + "/machine", datastore: store)
            try await cache.update()
            #expect(store.replicaStatus().contains { $0.isCurrent })
            try await MySQLTestReplicas.withReplicationPaused {
                var last: UInt64 = 0
                for round in 1...5 {
                    last = try await primary.append(try LogRecord([.set(key: Array("k".utf8), value: Array("\(round)".utf8))]).encoded())
                }
                #expect(try await MySQLTestReplicas.update(cache, until: last, seconds: 30))
                #expect(try cache.value(forKey: "k".utf8) == Array("5".utf8))
                let status = store.replicaStatus()
                #expect(status.contains { $0.lastProblem?.contains("lags") == true }, "\(status)")
            }
            try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
            let readsBefore = store.replicaStatus().map(\.reads).reduce(0, +)
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, store.replicaStatus().map(\.reads).reduce(0, +) == readsBefore {
                try await cache.update()
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(store.replicaStatus().map(\.reads).reduce(0, +) > readsBefore, "\(store.replicaStatus())")
        }
        await store.close()
    }

    /// History is rewritten on the primary while the replicas apply nothing:
    /// a machine that had read through them and a new machine both end on
    /// the exact state (they rebuild from the primary's checkpoint, which the
    /// replicas do not hold yet); after replication resumes, a third machine
    /// rebuilds through a replica and ends on the same state.
    @Test func aHistoryRewriteSeenThroughLaggingReplicasEndsOnTheExactState() async throws {
        let table = MySQLTestServer.uniqueTableName()
        let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
        try await primary.createIfMissing()
        var generator = SeededGenerator(seed: Self.seed)
        func appendRandom(_ count: Int, tag: String) async throws {
            for index in 0..<count {
                let operations: [LogOperation] = (0..<Int.random(in: 1...3, using: &generator)).map { item in
                    let key = Array("k\(Int.random(in: 0..<150, using: &generator))".utf8)
                    return Int.random(in: 0..<5, using: &generator) == 0 ? .delete(key: key) : .set(key: key, value: Array("\(tag)-\(index)-\(item)".utf8))
                }
                _ = try await primary.append(try LogRecord(operations).encoded())
            }
        }
        try await appendRandom(300, tag: "a")
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        let store = try MySQLDatastore(configuration: try MySQLTestReplicas.configuration(table: table))
        try await withTemporaryDirectory { directory in
            let early = try SharedCache(statePath: directory + "/early", datastore: store)
            try await early.update()
            #expect(try early.updateID() == 300)
            let latest = try await MySQLTestReplicas.withReplicationPaused { () async throws -> UInt64 in
                try await appendRandom(200, tag: "b")
                _ = try await HistoryRewriter(datastore: primary, scratchDirectory: directory).rewrite(through: try await primary.latestUpdateID())
                try await appendRandom(50, tag: "c")
                let latest = try await primary.latestUpdateID()
                let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
                #expect(try await MySQLTestReplicas.update(early, until: latest, seconds: 30))
                #expect(try await MySQLTestReplicas.update(fresh, until: latest, seconds: 30))
                return latest
            }
            #expect(try await primary.firstRetainedUpdateID() == 501)
            let reference = try SharedCache(statePath: directory + "/reference", datastore: primary)
            try await reference.update()
            let expected = try CacheFixture.contents(reference)
            #expect(expected.count > 50)
            try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
            let late = try SharedCache(statePath: directory + "/late", datastore: store)
            #expect(try await MySQLTestReplicas.update(late, until: latest))
            for name in ["early", "fresh", "late"] {
                let cache = try SharedCache(statePath: directory + "/" + name, datastore: primary)
                #expect(try cache.updateID() == latest, "\(name)")
                try CacheFixture.expectContents(cache, equal: expected)
            }
        }
        await store.close()
    }

    /// A writer's `set` returns once its record is applied locally even
    /// though no replica holds it (their SQL threads are stopped and the lag
    /// bound is long): the read-your-writes step reads it from the primary.
    /// A second machine reading through the same replicas meanwhile shows
    /// the older value (it lags, it is never wrong), and the newer one once
    /// replication resumes.
    @Test func aWriterReadsItsOwnWritesBeforeTheReplicasHoldThem() async throws {
        let table = MySQLTestServer.uniqueTableName()
        let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
        try await primary.createIfMissing()
        _ = try await primary.append(try LogRecord([.set(key: Array("flag".utf8), value: Array("old".utf8))]).encoded())
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        var configuration = try MySQLTestReplicas.configuration(table: table)
        configuration.replicas.maximumLag = .seconds(600)
        let writerStore = try MySQLDatastore(configuration: configuration)
        let readerStore = try MySQLDatastore(configuration: configuration)
        try await withTemporaryDirectory { directory in
            let writer = try SharedCache(statePath: directory + "/writer", datastore: writerStore)
            let reader = try SharedCache(statePath: directory + "/reader", datastore: readerStore)
            try await writer.update()
            try await reader.update()
            let id = try await MySQLTestReplicas.withReplicationPaused { () async throws -> UInt64 in
                let id = try await writer.set(Array("new".utf8), forKey: "flag".utf8)
                #expect(try writer.updateID() >= id)
                #expect(try writer.value(forKey: "flag".utf8) == Array("new".utf8))
                try await reader.update()
                #expect(try reader.value(forKey: "flag".utf8) == Array("old".utf8))
                #expect(try reader.updateID() < id)
                return id
            }
            #expect(try await MySQLTestReplicas.update(reader, until: id))
            #expect(try reader.value(forKey: "flag".utf8) == Array("new".utf8))
            #expect(readerStore.statistics().replicaStatements > 0)
        }
        await writerStore.close()
        await readerStore.close()
    }

    /// A change stream of a process that applies nothing itself (another
    /// process of its machine — here another cache on the same state file —
    /// applied the records) reads what the shared file reached through
    /// replicas that hold none of it: it must get every change, from the
    /// primary, rather than take the replicas' empty pages for records that
    /// compaction removed and skip them.
    @Test func aChangeStreamReadsWhatItsMachineAppliedEvenWhenTheReplicasLag() async throws {
        let table = MySQLTestServer.uniqueTableName()
        var direct = try MySQLTestServer.configuration(table: table)
        direct.compactsSingleKeyRecords = false
        let primary = try MySQLDatastore(configuration: direct)
        try await primary.createIfMissing()
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        var configuration = try MySQLTestReplicas.configuration(table: table)
        configuration.compactsSingleKeyRecords = false
        configuration.replicas.maximumLag = .seconds(600)
        let readerStore = try MySQLDatastore(configuration: configuration)
        try await withTemporaryDirectory { directory in
            let applier = try SharedCache(statePath: directory + "/state", datastore: primary)
            let reader = try SharedCache(statePath: directory + "/state", datastore: readerStore)
            try await applier.update()
            // The reader's datastore has read through a replica before.
            try await reader.update()
            #expect(readerStore.statistics().replicaStatements > 0)
            let (written, seen) = try await MySQLTestReplicas.withReplicationPaused { () async throws -> ([UInt64], [UInt64]) in
                var written: [UInt64] = []
                for index in 0..<5 { written.append(try await applier.set(Array("v\(index)".utf8), forKey: Array("k\(index)".utf8))) }
                // The stream reads while no replica holds the records (it
                // is given a minute: a stream that skipped them waits for
                // changes that never come).
                let changes = try reader.changes(after: 0, pollInterval: .milliseconds(10))
                let consumer = Task { () async throws -> [UInt64] in
                    var seen: [UInt64] = []
                    for try await event in changes {
                        guard case .changed(let change) = event else { break }
                        seen.append(change.updateID)
                        if seen.count == written.count { break }
                    }
                    return seen
                }
                let watchdog = Task {
                    try await Task.sleep(for: .seconds(60))
                    consumer.cancel()
                }
                defer { watchdog.cancel() }
                return (written, try await consumer.value)
            }
            #expect(seen == written)
        }
        await readerStore.close()
        await primary.close()
    }

    /// One poller per machine, counted where it matters: eight processes
    /// follow one state file through the replicas (the election test of
    /// `PollerElectionProcessTests`, over MySQL). While nothing is written,
    /// the replicas count one statement per round of the poller, not eight;
    /// after the poller is killed another takes over and every process
    /// still sees every record.
    @Test(.timeLimit(.minutes(5))) func onePollerPerMachineIsWhatTheReplicasCount() async throws {
        let table = MySQLTestServer.uniqueTableName()
        let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
        try await primary.createIfMissing()
        try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)
        let monitor = try MySQLDatastore(configuration: try MySQLTestReplicas.configuration(table: table))
        func replicaQuestions() async throws -> UInt64 {
            try await monitor.serverStatus(["Questions"]).filter { !$0.isPrimary }.reduce(0) { $0 + ($1.counters["QUESTIONS"] ?? 0) }
        }
        try await withTemporaryDirectory { directory in
            try await PollerElectionProcessTests.oneProcessPollsForAll(
                store: primary, storeSpec: "mysql:\(table)+replicas", directory: directory
            ) { roundsOfThePoller in
                // Other suites may read through the same replicas at the
                // same time, which only adds statements: one window within
                // the bound shows that seven processes stay silent.
                var windows: [(polls: Int, statements: UInt64)] = []
                for _ in 0..<5 {
                    let rounds = try roundsOfThePoller()
                    let questions = try await replicaQuestions()
                    try await Task.sleep(for: .milliseconds(500))
                    let statements = try await replicaQuestions() - questions
                    windows.append((try roundsOfThePoller() - rounds, statements))
                    // One read per round, the monitor's own status read, and
                    // a round in flight at each end of the window.
                    if let last = windows.last, last.polls >= 3, last.statements <= UInt64(last.polls + 4) { return }
                }
                Issue.record("the replicas counted more than one poller's statements in every window: \(windows)")
            }
        }
        await monitor.close()
    }
}
