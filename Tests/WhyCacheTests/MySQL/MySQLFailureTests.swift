import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// A MariaDB server of one test's own, started, killed, frozen and restarted
/// with `scripts/mariadb-server.sh` (whose path the test command exports).
struct PrivateMariaDB {
    let directory: String
    let port: Int
    private let script: String

    /// A new, empty folder for a test's own server and files: under
    /// `WHYCACHE_TEST_SERVER_ROOT` (the test command's, which kills any
    /// server a crashed run left there), else under `/tmp`. Short, because a
    /// server's socket path must fit in 108 bytes.
    static func makeFolder() throws -> String {
        let root = ProcessInfo.processInfo.environment["WHYCACHE_TEST_SERVER_ROOT"] ?? "/tmp"
        let directory = root + "/wc-db-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A server in `directory` on a free port; not started yet.
    init(directory: String) throws {
        self.directory = directory
        self.script = try MySQLTestServer.variable("WHYCACHE_TEST_MARIADB_SCRIPT")
        guard let port = Int(try Self.run(script, ["free-port"])) else { throw MySQLTestFailure(description: "no free port") }
        self.port = port
    }

    /// A server that runs already (one of the test command's replicas).
    init(directory: String, port: Int) throws {
        self.directory = directory
        self.port = port
        self.script = try MySQLTestServer.variable("WHYCACHE_TEST_MARIADB_SCRIPT")
    }

    /// Starts the server (creating its data directory and test user the first time).
    func start() throws { _ = try Self.run(script, ["start", directory, "\(port)"]) }

    /// Starts the server as a replica of the server on `primaryPort` (only
    /// the first start sets up replication; later ones resume it).
    func startReplica(of primaryPort: Int) throws { _ = try Self.run(script, ["start-replica", directory, "\(port)", "\(primaryPort)"]) }

    /// Runs `statement` as the server's administrator (for example `STOP
    /// SLAVE SQL_THREAD`) and returns what it printed.
    @discardableResult
    func sql(_ statement: String) throws -> String { try Self.run(script, ["sql", directory, statement]) }

    /// Stops the server and waits until it has exited.
    func stop() throws { _ = try Self.run(script, ["stop", directory]) }

    /// Kills the server with SIGKILL, as a crash would.
    func kill() throws { _ = try Self.run(script, ["kill", directory]) }

    /// Sends `signal` to the server process (SIGSTOP freezes it, SIGCONT
    /// thaws it). `kill` returns before a stop takes effect, so for SIGSTOP
    /// this waits until the kernel reports the process stopped.
    func send(_ signal: Int32) throws {
        let text = try String(contentsOfFile: directory + "/mysqld.pid", encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), Foundation.kill(pid, signal) == 0 else {
            throw MySQLTestFailure(description: "cannot signal the server")
        }
        guard signal == SIGSTOP else { return }
        for _ in 0..<500 {
            // /proc/<pid>/stat: "pid (name) state …"; state T means stopped.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T") {
                return
            }
            usleep(10_000)
        }
        throw MySQLTestFailure(description: "the server did not stop")
    }

    /// A configuration for this server's test database.
    func configuration() throws -> MySQLConfiguration {
        var configuration = try MySQLTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: port)
        configuration.connectTimeout = .seconds(2)
        configuration.readTimeout = .seconds(2)
        configuration.writeTimeout = .seconds(2)
        return configuration
    }

    private static func run(_ script: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MySQLTestFailure(description: "mariadb-server.sh \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The MySQL datastore when its server is down, dies, restarts or hangs:
/// typed errors, nothing half-applied, local reads keep working, and
/// recovery without any call to reconnect.
@Suite(.serialized) struct MySQLFailureTests {
    /// Runs `body` with a private server that is stopped and deleted afterwards.
    private func withPrivateServer(_ body: (PrivateMariaDB, String) async throws -> Void) async throws {
        let directory = try PrivateMariaDB.makeFolder()
        let server = try PrivateMariaDB(directory: directory + "/server")
        defer {
            try? server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await body(server, directory)
    }

    /// No server at start: a typed `unavailable` error; once the server is up,
    /// the same datastore object works.
    @Test func aServerThatIsDownAtStartIsUnavailableUntilItComesUp() async throws {
        try await withPrivateServer { server, _ in
            let store = try MySQLDatastore(configuration: try server.configuration())
            let error = await caughtDatastoreError { try await store.createIfMissing() }
            guard case .unavailable(let reason) = error else {
                Issue.record("expected unavailable, got \(String(describing: error))")
                return
            }
            #expect(reason.contains("127.0.0.1:\(server.port)"))
            try server.start()
            try await store.createIfMissing()
            #expect(try await store.append(Array("after".utf8)) == 1)
        }
    }

    /// The server is killed while a cache writes and updates: writes fail with
    /// a typed error and apply nothing, `update()` fails with a typed error
    /// while local reads go on, and after a restart everything works again.
    @Test func aServerKilledAndRestartedMidRunRecoversByItself() async throws {
        try await withPrivateServer { server, directory in
            try server.start()
            let store = try MySQLDatastore(configuration: try server.configuration())
            try await store.createIfMissing()
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            for index in 0..<50 { try await cache.set(bytes("v\(index)"), forKey: bytes("k\(index % 10)")) }
            let reached = try cache.updateID()

            try server.kill()
            switch await caughtDatastoreError({ try await cache.set(bytes("lost"), forKey: bytes("k0")) }) {
            case .unavailable, .appendOutcomeUnknown: break
            case let other: Issue.record("expected unavailable, got \(String(describing: other))")
            }
            await #expect(throws: CacheError.self) { try await cache.update() }
            #expect(try cache.updateID() == reached)
            #expect(try cache.value(forKey: bytes("k9")) == bytes("v49"))

            try server.start()
            let id = try await cache.set(bytes("back"), forKey: bytes("k0"))
            #expect(id > reached)
            #expect(try cache.value(forKey: bytes("k0")) == bytes("back"))
            let fresh = try SharedCache(statePath: directory + "/fresh", datastore: store)
            try await fresh.update()
            try CacheFixture.expectContents(fresh, equal: try CacheFixture.contents(cache))
        }
    }

    /// `whycache-tool follow` keeps going while the server is down, waiting
    /// twice as long after each failure (up to `--maximum-backoff`), and
    /// applies new records once the server is back; SIGTERM ends it with 0.
    @Test func followBacksOffWhileTheServerIsDownAndCatchesUpAfterwards() async throws {
        try await withPrivateServer { server, directory in
            try server.start()
            let configuration = try server.configuration()
            let store = try MySQLDatastore(configuration: configuration)
            try await store.createIfMissing()
            _ = try await store.append(try LogRecord([.set(key: bytes("k"), value: bytes("before"))]).encoded())
            let url = "mysql://\(configuration.user)@127.0.0.1:\(server.port)/\(configuration.database)?table=\(configuration.table.name)&connect-timeout=30"
            let state = directory + "/state"
            let follower = try HelperProcess(
                ["follow", "--store", url, "--state", state, "--interval", "0.1", "--maximum-backoff", "0.4"],
                executable: ToolRunner.executable, environment: ["WHYCACHE_MYSQL_PASSWORD": configuration.password])
            func value() throws -> String? { try ToolRunner.run(["get", "k", "--state", state]).lines.first }
            func waitFor(_ expected: String) throws -> Bool {
                for _ in 0..<200 {
                    if try value() == expected { return true }
                    usleep(50_000)
                }
                return false
            }
            #expect(try waitFor("before"))
            try server.kill()
            usleep(2_000_000)
            try server.start()
            let again = try MySQLDatastore(configuration: configuration)
            let id = try await again.append(try LogRecord([.set(key: bytes("k"), value: bytes("after"))]).encoded())
            #expect(try waitFor("after"), "follow did not catch up after the server came back")
            follower.send(SIGTERM)
            let result = await follower.finish()
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.errors.contains("failures_in_a_row=1 retry_in=0.2 seconds"), "\(result.errors)")
            #expect(result.errors.contains("failures_in_a_row=3 retry_in=0.4 seconds"), "\(result.errors)")
            #expect(!result.errors.contains("retry_in=0.8"), "the wait exceeded --maximum-backoff: \(result.errors)")
            #expect(result.errors.contains("updates work again"), "\(result.errors)")
            #expect(result.errors.contains("update_id=\(id)"), "\(result.errors)")
            #expect(result.errors.hasSuffix("stopped\n"), "\(result.errors)")
            #expect(!result.errors.contains(configuration.password))
        }
    }

    /// A ``BackgroundUpdater`` keeps its rounds going while the server is
    /// killed, and a waiter for a record written after the restart returns.
    @Test func theBackgroundUpdaterRecoversAfterTheServerRestarts() async throws {
        try await withPrivateServer { server, directory in
            try server.start()
            let store = try MySQLDatastore(configuration: try server.configuration())
            try await store.createIfMissing()
            let cache = try SharedCache(statePath: directory + "/state", datastore: store)
            let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .milliseconds(50), maximumBackoff: .milliseconds(200)))
            let running = Task { await updater.run() }
            defer { running.cancel() }
            let first = try await store.append(try LogRecord([.set(key: bytes("k"), value: bytes("1"))]).encoded())
            try await updater.waitUntilApplied(through: first)
            try server.kill()
            for _ in 0..<500 where updater.consecutiveFailures < 2 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(updater.consecutiveFailures >= 2)
            #expect(try cache.value(forKey: bytes("k")) == bytes("1"))
            try server.start()
            let second = try await store.append(try LogRecord([.set(key: bytes("k"), value: bytes("2"))]).encoded())
            try await updater.waitUntilApplied(through: second)
            #expect(try cache.value(forKey: bytes("k")) == bytes("2"))
            running.cancel()
            await running.value
        }
    }

    /// A server that stops answering (frozen with SIGSTOP) makes calls fail
    /// with `unavailable` after the configured timeouts instead of hanging;
    /// once it runs again, calls succeed.
    @Test func aServerThatStopsAnsweringTimesOut() async throws {
        try await withPrivateServer { server, _ in
            try server.start()
            let store = try MySQLDatastore(configuration: try server.configuration())
            try await store.createIfMissing()
            _ = try await store.append(Array("before".utf8))
            try server.send(SIGSTOP)
            defer { try? server.send(SIGCONT) }
            let error = await caughtDatastoreError { _ = try await store.readRecords(after: 0, through: nil, limits: .default) }
            guard case .unavailable = error else {
                Issue.record("expected unavailable, got \(String(describing: error))")
                return
            }
            try server.send(SIGCONT)
            // A thawed server on a loaded machine may take a few of the
            // 2-second timeouts to answer again; then calls succeed.
            var records: [LogEntry]?
            for _ in 0..<10 where records == nil {
                records = try? await store.readRecords(after: 0, through: nil, limits: .default)
            }
            #expect(records?.map(\.payload) == [Array("before".utf8)])
        }
    }
}
