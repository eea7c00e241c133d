import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `whycache-tool bench fleet`: a fleet on one machine. `--machines` state
/// files stand for machines, each followed by `--processes` worker
/// processes (a ``BackgroundUpdater`` each, one poller per machine), while
/// `--writers` processes make single-key sets at `--write-rate` sets per
/// second in total, against a fresh log table on the MySQL store of
/// `--store` (and the replicas its URL names).
///
/// It reports, as JSON lines:
/// - `propagation_ms` at quantiles 0.5, 0.99 and 1.0: from a set returning
///   on its writer's machine to the value being readable on every machine
///   (each machine's state file is checked every 2 ms by this process);
/// - `datastore_statements_per_machine_per_s` and `…_per_process_per_s`: the
///   statements the servers counted (`Questions`, on the primary and every
///   replica) while the writers wrote, minus the writers' own (counted by
///   their datastores) and this command's status reads, per machine (and
///   per process) per second;
/// - `primary_statements_per_s` and `replica_statements_per_s`: everything
///   each kind of server counted, writers included;
/// - `bytes_read_per_machine_per_update`: the result bytes the followers
///   read (counted by their datastores) per machine per record written;
/// - `server_cpu_seconds_per_machine_per_minute`: the CPU time of the
///   servers' processes (`/proc/PID/stat`; servers on this machine only).
///
/// The log table `<table>_fleet` (default table `bench_<pid>`) stays on the server.
struct BenchFleetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Machines × processes following one MySQL log (through the URL's replicas) while writers write: propagation delay, statements and CPU per machine.")

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "State files, each standing for a machine.")
    var machines = 32

    @Option(name: .long, help: "Follower processes per machine.")
    var processes = 4

    @Option(name: .long, help: "Writer processes.")
    var writers = 2

    @Option(name: .long, help: "Single-key sets per second, all writers together.")
    var writeRate = 20.0

    @Option(name: .long, help: "Seconds between two polls of a machine's poller.")
    var interval = 0.25

    @Option(name: .long, help: "Seconds the writers write (the measured window).")
    var seconds = 30.0

    @Option(name: .long, help: "Folder for the state files (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    func validate() throws {
        try requireAtLeastOne(["machines": machines, "processes": processes, "writers": writers])
        for (name, value) in [("write-rate", writeRate), ("interval", interval), ("seconds", seconds)] where !(value > 0 && value.isFinite) {
            throw ValidationError("--\(name) must be a positive number")
        }
    }

    func execute() async throws {
        guard case .mysql(let address) = try storeOptions.requireStore() else {
            throw ToolUsageError("bench fleet counts statements at MySQL servers: it needs a mysql:// store")
        }
        let base = try address.configuration(password: try storeOptions.password(), defaultTable: "bench_\(getpid())")
        BenchMySQLCommand.reportTables(base, suffixes: ["fleet"], command: "bench fleet")
        var primaryOnly = base
        primaryOnly.replicas = .none
        let log = try await BenchMySQLCommand.freshLog(primaryOnly, "fleet")
        let monitor = try MySQLDatastore(configuration: { var c = base; c.table = log.configuration.table; return c }())
        do {
            try await waitForReplicas(of: base, table: log.configuration.table)
            try await BenchProgress.run("bench fleet") {
                try await withBenchFolder("fleet", in: directory) { folder in
                    try await measure(folder: folder, table: log.configuration.table.name, monitor: monitor)
                }
            }
        } catch {
            await log.close()
            await monitor.close()
            throw error
        }
        await log.close()
        await monitor.close()
    }

    // MARK: The run

    private func measure(folder: String, table: String, monitor: MySQLDatastore) async throws {
        let machinePaths = (0..<machines).map { "\(folder)/machine-\($0)" }
        var environment = ProcessInfo.processInfo.environment
        environment[StoreOptions.passwordVariable] = try storeOptions.password()
        let logArguments = ["--store", storeOptions.store ?? "", "--table", table]

        let followersStarted = Clocks.monotonicNanoseconds()
        var followers: [FleetChild] = []
        defer { for follower in followers where follower.process.isRunning { follower.process.terminate() } }
        for path in machinePaths {
            for _ in 0..<processes {
                followers.append(try FleetChild(
                    ["bench", "fleet-follower", "--state", path, "--interval", String(interval)] + logArguments, environment: environment))
            }
        }
        try await waitUntilFollowing(machinePaths)
        try await Task.sleep(for: .seconds(interval * 4))

        let checker = try FleetVisibility(machinePaths: machinePaths, writers: writers)
        let before = try await ServerSample.take(monitor)
        let writerProcesses = try (0..<writers).map { writer in
            try FleetChild(
                ["bench", "fleet-writer", "--state", machinePaths[writer % machines], "--writer", String(writer),
                 "--rate", String(writeRate / Double(writers)), "--seconds", String(seconds), "--output", "\(folder)/writer-\(writer)"]
                    + logArguments, environment: environment)
        }
        while writerProcesses.contains(where: { $0.process.isRunning }) {
            checker.poll()
            try await Task.sleep(for: .milliseconds(2))
        }
        let after = try await ServerSample.take(monitor)
        var writerReports: [FleetProcessReport] = []
        var returned: [[UInt64]] = []
        for (writer, process) in writerProcesses.enumerated() {
            writerReports.append(try process.finish())
            returned.append(try Self.returnTimes(of: "\(folder)/writer-\(writer)"))
        }
        // The last sets reach the machines after the writers stopped.
        let deadline = Clocks.monotonicNanoseconds() + 10_000_000_000
        while !checker.hasSeen(returned.map(\.count)), Clocks.monotonicNanoseconds() < deadline {
            checker.poll()
            try await Task.sleep(for: .milliseconds(2))
        }
        for follower in followers { follower.process.terminate() }
        let followerReports = try followers.map { try $0.finish() }
        let followersLived = Double(Clocks.monotonicNanoseconds() - followersStarted) / 1e9
        followers = []

        report(
            before: before, after: after, writerReports: writerReports, followerReports: followerReports,
            followersLived: followersLived, propagation: checker.propagationMilliseconds(returned: returned))
    }

    /// Prints the JSON lines.
    private func report(
        before: ServerSample, after: ServerSample, writerReports: [FleetProcessReport], followerReports: [FleetProcessReport],
        followersLived: Double, propagation: [Double]
    ) {
        let window = Double(after.time - before.time) / 1e9
        let sets = writerReports.isEmpty ? 0 : Int(writeRate * seconds)
        let shape = "\(machines) machines × \(processes) processes, \(writers) writers at \(writeRate) sets/s, interval \(interval) s, \(String(format: "%.1f", window)) s"
        func emit(_ metric: String, _ value: Double, _ unit: String, quantile: Double? = nil, note: String) {
            var measurement = Measurement(metric: metric, value: value, unit: unit, keys: sets, note: "\(shape); \(note)")
            measurement.quantile = quantile
            measurement.emit()
        }
        let sorted = propagation.sorted()
        for quantile in [0.5, 0.99, 1.0] where !sorted.isEmpty {
            let index = min(sorted.count - 1, Int((Double(sorted.count) * quantile).rounded(.up)) - 1)
            emit("propagation_ms", sorted[max(0, index)], "ms", quantile: quantile,
                 note: "\(sorted.count) sets, from the set returning on its machine to readable on all \(machines)")
        }
        let servers = after.servers.count
        let writerStatements = writerReports.reduce(0) { $0 + $1.statements }
        // Each server counted this command's own status read at the end of the window.
        let counted = after.totalQuestions &- before.totalQuestions
        let followerStatements = Double(counted) - Double(writerStatements) - Double(servers)
        let clientCounted = Double(followerReports.reduce(0) { $0 + $1.statements }) / Double(machines) / followersLived
        emit("datastore_statements_per_machine_per_s", followerStatements / Double(machines) / window, "statements/s",
             note: "Questions counted by \(servers) servers minus \(writerStatements) statements of the writers; the followers' datastores counted \(String(format: "%.2f", clientCounted))/s per machine over their whole \(String(format: "%.1f", followersLived)) s")
        emit("datastore_statements_per_process_per_s", followerStatements / Double(machines * processes) / window, "statements/s",
             note: "the same per follower process")
        let primary = Double(after.questions(primary: true) &- before.questions(primary: true)) / window
        let replica = Double(after.questions(primary: false) &- before.questions(primary: false)) / window
        emit("primary_statements_per_s", primary, "statements/s", note: "everything the primary counted, writers included")
        emit("replica_statements_per_s", replica, "statements/s", note: "everything the \(servers - 1) replicas counted together")
        let followerBytes = Double(followerReports.reduce(0) { $0 + $1.resultBytes })
        emit("bytes_read_per_machine_per_update", followerBytes / Double(machines) / Double(max(sets, 1)), "bytes",
             note: "result values the followers' datastores read over the run, per machine per record written")
        if let cpu = after.cpuSeconds(since: before) {
            emit("server_cpu_seconds_per_machine_per_minute", cpu / Double(machines) / (window / 60), "s",
                 note: "user+system CPU of the \(servers) server processes, writers' load included")
        }
        if servers > 1, let cpu = after.cpuSeconds(since: before, primary: false) {
            let statements = Double(after.questions(primary: false) &- before.questions(primary: false))
            emit("replica_cpu_microseconds_per_statement", statements > 0 ? cpu * 1e6 / statements : 0, "µs",
                 note: "user+system CPU of the \(servers - 1) replicas (applying the primary's binary log included) per statement they counted")
        }
    }

    // MARK: Steps

    /// Waits until every replica of `base` holds `table` (replicated from the primary).
    private func waitForReplicas(of base: MySQLConfiguration, table: MySQLIdentifier) async throws {
        for endpoint in base.replicas.endpoints {
            var direct = base
            direct.replicas = .none
            direct.endpoint = endpoint
            direct.table = table
            let replica = try MySQLDatastore(configuration: direct)
            let deadline = Clocks.monotonicNanoseconds() + 60_000_000_000
            while (try? await replica.latestUpdateID()) == nil {
                guard Clocks.monotonicNanoseconds() < deadline else { throw ValidationError("the replica \(endpoint) did not replicate \(table)") }
                try await Task.sleep(for: .milliseconds(50))
            }
            await replica.close()
        }
    }

    /// Waits until every machine's state file exists and was updated once.
    private func waitUntilFollowing(_ paths: [String]) async throws {
        let deadline = Clocks.monotonicNanoseconds() + 120_000_000_000
        for path in paths {
            while (try? StoreOptions.openStateFile(at: path).statistics().isInitialized) != true {
                guard Clocks.monotonicNanoseconds() < deadline else { throw ValidationError("the followers of \(path) did not start") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// The return times a writer wrote, by set number.
    private static func returnTimes(of path: String) throws -> [UInt64] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            guard let time = line.split(separator: " ").last.flatMap({ UInt64($0) }) else {
                throw ValidationError("bad line in \(path): \(line)")
            }
            return time
        }
    }
}

/// A fleet process: the tool itself, run with `arguments`.
private struct FleetChild {
    let process = Process()
    private let output = Pipe()

    init(_ arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = output
        try process.run()
    }

    /// Waits for the process and decodes its report.
    func finish() throws -> FleetProcessReport {
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = data.split(separator: UInt8(ascii: "\n")).last else {
            throw ValidationError("a fleet process (\(process.arguments?.prefix(2).joined(separator: " ") ?? "")) failed with status \(process.terminationStatus)")
        }
        return try JSONDecoder().decode(FleetProcessReport.self, from: Data(line))
    }
}

/// When each writer's sets became readable on each machine: this process
/// opens every machine's state file and looks for each writer's next key.
private final class FleetVisibility {
    private let files: [SharedStateFile]
    /// `seen[machine][writer]`: the monotonic time at which each set was first found.
    private var seen: [[[UInt64]]]

    init(machinePaths: [String], writers: Int) throws {
        files = try machinePaths.map { try StoreOptions.openStateFile(at: $0) }
        seen = Array(repeating: Array(repeating: [], count: writers), count: machinePaths.count)
    }

    /// Looks at every machine once. A writer's sets become visible in
    /// order (a state holds a prefix of the log), so only each writer's
    /// next key is looked for.
    func poll() {
        for (machine, file) in files.enumerated() {
            guard let view = try? file.snapshot() else { continue }
            let now = Clocks.monotonicNanoseconds()
            for writer in seen[machine].indices {
                while (try? view.value(forKey: BenchFleetWriterCommand.key(writer: writer, index: seen[machine][writer].count))) != nil {
                    seen[machine][writer].append(now)
                }
            }
            view.close()
        }
    }

    /// Whether every machine has seen `counts[w]` sets of each writer `w`.
    func hasSeen(_ counts: [Int]) -> Bool {
        seen.allSatisfy { machine in zip(machine, counts).allSatisfy { $0.count >= $1 } }
    }

    /// Per set seen everywhere: the time from its return on its writer's
    /// machine to its visibility on the last machine, in milliseconds.
    func propagationMilliseconds(returned: [[UInt64]]) -> [Double] {
        var delays: [Double] = []
        for (writer, times) in returned.enumerated() {
            for (index, returnedAt) in times.enumerated() {
                let everywhere = seen.map { $0[writer].count > index ? $0[writer][index] : nil }
                guard everywhere.allSatisfy({ $0 != nil }) else { continue }
                let last = everywhere.compactMap { $0 }.max() ?? returnedAt
                delays.append(Double(Int64(bitPattern: last &- returnedAt)) / 1e6)
            }
        }
        return delays
    }
}

/// The servers' counters and CPU time at one moment.
private struct ServerSample {
    let time: UInt64
    let servers: [MySQLServerStatus]
    let cpu: [Double?]

    static func take(_ datastore: MySQLDatastore) async throws -> ServerSample {
        let servers = try await datastore.serverStatus(["Questions"])
        return ServerSample(time: Clocks.monotonicNanoseconds(), servers: servers, cpu: servers.map { $0.pidFile.flatMap(Self.cpuSeconds(pidFile:)) })
    }

    var totalQuestions: UInt64 { servers.reduce(0) { $0 + ($1.counters["QUESTIONS"] ?? 0) } }

    func questions(primary: Bool) -> UInt64 {
        servers.filter { $0.isPrimary == primary }.reduce(0) { $0 + ($1.counters["QUESTIONS"] ?? 0) }
    }

    /// The CPU seconds the servers (only the primary, or only the replicas,
    /// when `primary` says which) used since `earlier`, when they run on
    /// this machine.
    func cpuSeconds(since earlier: ServerSample, primary: Bool? = nil) -> Double? {
        var total = 0.0
        for (index, (now, then)) in zip(cpu, earlier.cpu).enumerated() where primary.map({ servers[index].isPrimary == $0 }) ?? true {
            guard let now, let then else { return nil }
            total += now - then
        }
        return total
    }

    /// User plus system CPU seconds of the process named in `pidFile`
    /// (fields 14 and 15 of `/proc/PID/stat`), nil when it is not here.
    private static func cpuSeconds(pidFile: String) -> Double? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
