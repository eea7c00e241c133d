import Glibc
import WhyCache
import WhyCacheMySQL
import WhyCacheTestSupport

/// Commands that drive a ``SharedCache`` over a ``FileDatastore`` or a
/// ``MySQLDatastore``, for the cache's multi-process, convergence and crash tests.
///
/// STORE is a file datastore directory, or `mysql:TABLE` for the log table
/// TABLE on the test server that `WHYCACHE_TEST_MYSQL_*` describe.
enum CacheCommands {
    static let table: [String: HelperCommandBody] = [
        "cache-writer": writer,
        "cache-updater": updater,
        "cache-update": update,
        "cache-set-forever": setForever,
        "cache-get": get,
        "cache-group-reader": groupReader,
        "cache-follow-changes": followChanges,
    ]

    /// Opens the datastore `spec` (creating it) and a cache on `statePath`
    /// that subscribes to `prefixes` (every key when empty).
    static func openCache(
        store spec: String, state statePath: String, operationsPerTransaction: Int? = nil, prefixes: [[UInt8]] = []
    ) async throws -> SharedCache {
        let store = try openStore(spec)
        try await store.createIfMissing()
        var configuration = SharedCache.Configuration()
        if let operationsPerTransaction { configuration.maximumOperationsPerTransaction = operationsPerTransaction }
        configuration.stateFileOptions.subscribedPrefixes = prefixes
        return try SharedCache(statePath: statePath, datastore: store, configuration: configuration)
    }

    /// The datastore `spec` names: a file datastore directory, or
    /// `mysql:TABLE[+replicas][+nocompact]` — the table on the test server,
    /// read through its replicas (`WHYCACHE_TEST_MYSQL_REPLICA_PORTS`, with
    /// the short lag and retry times of `MySQLReplicaConfiguration.testPolicy`), with
    /// single-key compaction off.
    static func openStore(_ spec: String) throws -> any Datastore {
        guard spec.hasPrefix("mysql:") else {
            return try FileDatastore(directory: spec, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 256 << 10))
        }
        let parts = spec.dropFirst("mysql:".count).split(separator: "+").map(String.init)
        guard let table = parts.first else { throw HelperCommand.UsageError(description: "mysql: needs a table") }
        var configuration = try MySQLConfiguration.testServer(table: table)
        for option in parts.dropFirst() {
            switch option {
            case "replicas":
                let ports = try MySQLConfiguration.testVariable("WHYCACHE_TEST_MYSQL_REPLICA_PORTS").split(separator: ",").compactMap { Int($0) }
                configuration.replicas = MySQLReplicaConfiguration.testPolicy(
                    host: try MySQLConfiguration.testVariable("WHYCACHE_TEST_MYSQL_HOST"), ports: ports)
            case "nocompact":
                configuration.compactsSingleKeyRecords = false
            default:
                throw HelperCommand.UsageError(description: "unknown mysql store option \(option)")
            }
        }
        return try MySQLDatastore(configuration: configuration)
    }

    /// `cache-writer STORE STATE SEED COUNT KEYSPACE [PREFIX…]`: COUNT
    /// random writes (sets, deletes, and multi-key sets) of keys
    /// `k0…k<KEYSPACE-1>`, through a cache whose state subscribes to the
    /// PREFIXes (every key without). After each write it checks
    /// read-your-writes: the local state has reached the returned id, and a
    /// key set outside the prefixes is not held. Prints `done COUNT LASTID`.
    static func writer(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let seed: UInt64 = try HelperCommand.integer(arguments, 2, "seed")
        let count: Int = try HelperCommand.integer(arguments, 3, "count")
        let keySpace: Int = try HelperCommand.integer(arguments, 4, "key space")
        let prefixes = arguments.dropFirst(5).map { Array($0.utf8) }
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state, prefixes: prefixes)
            var random = SeededGenerator(seed: seed)
            var last: UInt64 = 0
            for index in 0..<count {
                let key = Array("k\(Int.random(in: 0..<keySpace, using: &random))".utf8)
                let id: UInt64
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<6:
                    id = try await cache.set(Array("s\(seed)-\(index)".utf8), forKey: key)
                    // Nobody can have moved this machine past `id` without
                    // applying this record, and a later record may have
                    // overwritten the key: the value is ours or newer. A
                    // key outside the prefixes is never held. Both are read
                    // from one pinned view — another process may apply a
                    // newer record between two separate reads.
                    let held = prefixes.isEmpty || prefixes.contains { key.starts(with: $0) }
                    let view = try cache.snapshot()
                    if view.updateID == id, try view.value(forKey: key) != (held ? Array("s\(seed)-\(index)".utf8) : nil) {
                        throw HelperCommand.UsageError(description: "read-your-writes violated at update \(id)")
                    }
                    view.close()
                case 6..<9:
                    id = try await cache.delete(key)
                default:
                    let items = (0..<3).map { item in
                        (key: Array("k\(Int.random(in: 0..<keySpace, using: &random))".utf8), value: Array("m\(seed)-\(index)-\(item)".utf8))
                    }
                    id = try await cache.set(contentsOf: items)
                }
                guard try cache.updateID() >= id, id > last else {
                    throw HelperCommand.UsageError(description: "update id \(id) not applied locally (state at \(try cache.updateID())) or not above the previous id \(last)")
                }
                last = id
            }
            HelperCommand.say("done \(count) \(last)")
        }
    }

    /// `cache-updater STORE STATE STOPFILE [PREFIX…]`: calls `update()` in a
    /// loop until STOPFILE exists, then once more, on a state that
    /// subscribes to the PREFIXes (every key without); prints
    /// `updated RECORDS UPDATEID`.
    static func updater(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let stopFile = try HelperCommand.string(arguments, 2, "stop file")
        let prefixes = arguments.dropFirst(3).map { Array($0.utf8) }
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state, prefixes: prefixes)
            var records = 0
            while access(stopFile, F_OK) != 0 {
                records += try await cache.update().recordsApplied
                try await Task.sleep(for: .milliseconds(2))
            }
            let summary = try await cache.update()
            records += summary.recordsApplied
            HelperCommand.say("updated \(records) \(summary.updateID)")
        }
    }

    /// `cache-update STORE STATE OPSPERTRANSACTION`: one `update()` with
    /// small transactions (so that a kill lands inside it); prints
    /// `updated RECORDS UPDATEID`.
    static func update(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let perTransaction: Int = try HelperCommand.integer(arguments, 2, "operations per transaction")
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state, operationsPerTransaction: perTransaction)
            HelperCommand.say("started")
            let summary = try await cache.update()
            HelperCommand.say("updated \(summary.recordsApplied) \(summary.updateID)")
        }
    }

    /// `cache-set-forever STORE STATE TAG [TASKS]`: writes until killed, from
    /// TASKS concurrent tasks (default 1; several tasks' writes are
    /// coalesced into shared appends). Write `n` (n = 0, 1, …; task `t`
    /// writes the `n` with `n % TASKS == t`) sets the keys `TAG-n-0` …
    /// `TAG-n-(n % 3)` in one record, `TAG-n-i` to `i × 100` bytes of `n`;
    /// `set N ID` is printed after each write returns.
    static func setForever(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let tag = try HelperCommand.string(arguments, 2, "tag")
        let tasks: Int = arguments.count > 3 ? try HelperCommand.integer(arguments, 3, "tasks") : 1
        guard tasks >= 1 else { throw HelperCommand.UsageError(description: "TASKS must be at least 1") }
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        var index = task
                        while true {
                            let items = (0..<(index % 3 + 1)).map { item in
                                (key: Array("\(tag)-\(index)-\(item)".utf8), value: Array(repeating: UInt8(truncatingIfNeeded: index), count: 100 * item))
                            }
                            let id = try await cache.set(contentsOf: items)
                            HelperCommand.say("set \(index) \(id)")
                            index += tasks
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// `cache-get STORE STATE KEY`: prints `value TEXT` or `missing`, and `at UPDATEID`,
    /// without updating.
    static func get(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let key = try HelperCommand.string(arguments, 2, "key")
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state)
            if let value = try cache.value(forKey: key.utf8) {
                HelperCommand.say("value \(String(decoding: value, as: UTF8.self))")
            } else {
                HelperCommand.say("missing")
            }
            HelperCommand.say("at \(try cache.updateID())")
        }
    }

    /// `cache-group-reader STORE STATE UPDATEFILE STOPFILE`: reads the keys
    /// `g0…g9` (which every record of the test sets together, to one value)
    /// through pinned snapshots in a loop, and once UPDATEFILE exists also
    /// calls `update()` between reads, until STOPFILE exists. Prints `ready`
    /// after its first read, then `ok READS FIRSTID LASTID` — or
    /// `torn ID VALUES` when a snapshot showed the group half-written, and
    /// `backwards FROM TO` when the update id decreased.
    static func groupReader(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let updateFile = try HelperCommand.string(arguments, 2, "update file")
        let stopFile = try HelperCommand.string(arguments, 3, "stop file")
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state)
            var reads = 0
            var first: UInt64?
            var last: UInt64 = 0
            while access(stopFile, F_OK) != 0 {
                if access(updateFile, F_OK) == 0 { try await cache.update() }
                let view = try cache.snapshot()
                let values = try (0..<10).map { try view.value(forKey: Array("g\($0)".utf8)) }
                let id = view.updateID
                view.close()
                guard Set(values).count == 1 else {
                    HelperCommand.say("torn \(id) \(values.map { $0.map { String(decoding: $0, as: UTF8.self) } ?? "-" })")
                    return
                }
                guard id >= last else {
                    HelperCommand.say("backwards \(last) \(id)")
                    return
                }
                last = id
                if first == nil {
                    first = id
                    HelperCommand.say("ready")
                }
                reads += 1
            }
            HelperCommand.say("ok \(reads) \(first ?? 0) \(last)")
        }
    }

    /// `cache-follow-changes STORE STATE STOPFILE`: calls `update()` every
    /// few milliseconds until STOPFILE exists, then until the state reaches
    /// the update id written in STOPFILE (at least once more; at most for 120
    /// seconds; a reader through a replica may see the end of the log late),
    /// while a change stream of the same cache delivers every change from
    /// update 0.
    /// Checks that the local update id never decreases and that the stream's
    /// update ids never decrease and never skip one (for logs without
    /// compaction, where every id exists). At the end it prints, for a MySQL
    /// datastore, `statements primary N replicas M`, then `backwards FROM TO`
    /// or `skipped AFTER NEXT` for the first violation, else
    /// `followed UPDATEID STREAMID RECORDS`.
    static func followChanges(_ arguments: [String]) throws {
        let store = try HelperCommand.string(arguments, 0, "store")
        let state = try HelperCommand.string(arguments, 1, "state")
        let stopFile = try HelperCommand.string(arguments, 2, "stop file")
        try HelperCommand.waitFor {
            let cache = try await openCache(store: store, state: state)
            let progress = Locked<(last: UInt64, records: Int, violation: String?)>((0, 0, nil))
            let stream = Task {
                for try await event in try cache.changes(after: 0, pollInterval: .milliseconds(5)) {
                    let stop = progress.withLock { progress -> Bool in
                        guard case .changed(let change) = event else {
                            progress.violation = "history rewritten at \(progress.last)"
                            return true
                        }
                        if change.updateID == progress.last { return false }
                        guard change.updateID == progress.last + 1 else {
                            progress.violation = "skipped \(progress.last) \(change.updateID)"
                            return true
                        }
                        progress.last = change.updateID
                        progress.records += 1
                        return false
                    }
                    if stop { return }
                }
            }
            var position: UInt64 = 0
            while access(stopFile, F_OK) != 0 {
                let reached = try await cache.update().updateID
                guard reached >= position else {
                    HelperCommand.say("backwards \(position) \(reached)")
                    stream.cancel()
                    return
                }
                position = reached
                try await Task.sleep(for: .milliseconds(5))
            }
            let target = HelperCommand.integer(inFileAt: stopFile) ?? 0
            let finalDeadline = ContinuousClock.now + .seconds(120)
            repeat {
                position = try await cache.update().updateID
                if position >= target { break }
                try await Task.sleep(for: .milliseconds(20))
            } while ContinuousClock.now < finalDeadline
            // The stream catches up with the state (or stops at a violation).
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, progress.withLock({ $0.violation == nil && $0.last < position }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            stream.cancel()
            _ = try? await stream.value
            let outcome = progress.withLock { $0 }
            if let mysql = cache.datastore as? MySQLDatastore {
                let statistics = mysql.statistics()
                HelperCommand.say("statements primary \(statistics.primaryStatements) replicas \(statistics.replicaStatements)")
            }
            if let violation = outcome.violation {
                HelperCommand.say(violation)
            } else {
                HelperCommand.say("followed \(position) \(outcome.last) \(outcome.records)")
            }
        }
    }
}
