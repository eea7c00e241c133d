import Foundation
import Synchronization
import Testing
import WhyCache

/// Runs the built `whycache-tool` as a separate process.
struct ToolRunner {
    static let executable = HelperProcess.builtExecutable("whycache-tool")

    /// Runs `whycache-tool arguments…` to completion.
    @discardableResult
    static func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil
    ) throws -> (status: Int32, lines: [String], errors: String) {
        try HelperProcess(arguments, executable: executable, environment: environment, input: input).finish()
    }

    /// ``run(_:environment:input:)`` for async tests: waits off Swift's
    /// cooperative pool (see ``HelperProcess``).
    @discardableResult
    static func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil
    ) async throws -> (status: Int32, lines: [String], errors: String) {
        try await HelperProcess(arguments, executable: executable, environment: environment, input: input).finish()
    }

    /// ``runOnTerminal(_:)`` for async tests: waits off Swift's cooperative pool.
    static func runOnTerminal(_ command: String) async throws -> (status: Int32, output: String) {
        let result = try await HelperProcess(["-qec", command, "/dev/null"], executable: URL(fileURLWithPath: "/usr/bin/script")).finish()
        return (result.status, result.lines.joined(separator: "\n") + result.errors)
    }

    /// Starts `whycache-tool arguments…` and returns the running process.
    static func start(_ arguments: [String]) throws -> HelperProcess {
        try HelperProcess(arguments, executable: executable)
    }

    /// Runs `command` (a shell command line) under a pseudo-terminal with
    /// `script`, so that the tool sees a terminal on stdout and stderr;
    /// returns the exit status and everything written to the terminal.
    static func runOnTerminal(_ command: String) throws -> (status: Int32, output: String) {
        let result = try HelperProcess(["-qec", command, "/dev/null"], executable: URL(fileURLWithPath: "/usr/bin/script")).finish()
        return (result.status, result.lines.joined(separator: "\n") + result.errors)
    }
}

/// The tool's command-line contract on a file datastore: every data and
/// state subcommand, exit statuses, JSON output, `--hex`, `verify`,
/// `follow`, and progress only on a terminal.
@Suite struct ToolContractTests {
    /// `--store` and `--state` options for `directory`.
    private func options(_ directory: String) -> [String] {
        ["--store", "file://\(directory)/log", "--state", directory + "/state"]
    }

    /// A state file this user may read but not write (here: owned by
    /// another user, mode 0444; a read-only mount behaves the same) cannot
    /// be read either, since readers register in its reader table: `get`
    /// and `stat` say so (exit status 3) instead of naming a failed system
    /// call. As root the tool runs as the user `nobody`, for whom the mode
    /// applies.
    @Test func aStateFileWithoutWriteAccessIsExplained() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)
            #expect(try ToolRunner.run(["set", "k", "v"] + options).status == 0)
            let state = directory + "/state"
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: state)
            for command in [["get", "k", "--state", state], ["stat", "--state", state]] {
                let result: (status: Int32, lines: [String], errors: String)
                if getuid() == 0 {
                    result = try HelperProcess(
                        ["--reuid=65534", "--regid=65534", "--clear-groups", ToolRunner.executable.path] + command,
                        executable: URL(fileURLWithPath: "/usr/bin/setpriv")
                    ).finish()
                } else {
                    result = try ToolRunner.run(command)
                }
                #expect(result.status == 3, "\(command): \(result.errors)")
                #expect(result.errors.contains("reading needs write access"), "\(command): \(result.errors)")
            }
        }
    }

    @Test func dataCommandsPrintUpdateIDsAndValues() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            let created = try ToolRunner.run(["init-store"] + options)
            #expect(created.status == 0, "\(created.errors)")
            #expect(try ToolRunner.run(["set", "user/1", "ada"] + options).lines == ["1"])
            #expect(try ToolRunner.run(["set", "user/2", "grace hopper"] + options).lines == ["2"])
            #expect(try ToolRunner.run(["set", "other", "x"] + options).lines == ["3"])
            #expect(try ToolRunner.run(["delete", "other", "never-set"] + options).lines == ["4"])

            #expect(try ToolRunner.run(["get", "user/2"] + options).lines == ["grace hopper"])
            let missing = try ToolRunner.run(["get", "other"] + options)
            #expect(missing.status == 1)
            #expect(missing.lines.isEmpty)
            #expect(missing.errors.contains("no value for the key other"), "\(missing.errors)")

            #expect(try ToolRunner.run(["keys"] + options).lines == ["user/1", "user/2"])
            #expect(try ToolRunner.run(["keys", "--prefix", "user/2"] + options).lines == ["user/2"])
            let dump = try ToolRunner.run(["dump", "--prefix", "user/"] + options)
            #expect(dump.lines == [#"{"key": "user/1", "value": "ada"}"#, #"{"key": "user/2", "value": "grace hopper"}"#])
            for line in dump.lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
                #expect(object?.keys.sorted() == ["key", "value"])
            }

            // A second state file catches up with update, and --through stops early.
            let other = ["--store", "file://\(directory)/log", "--state", directory + "/other"]
            #expect(try ToolRunner.run(["update", "--through", "3"] + other).lines == ["3"])
            #expect(try ToolRunner.run(["get", "other"] + other).lines == ["x"])
            #expect(try ToolRunner.run(["update"] + other).lines == ["4"])
            #expect(try ToolRunner.run(["get", "other"] + other).status == 1)
        }
    }

    @Test func exitStatusesSayWhatWentWrong() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            // 3: the datastore or the state file failed.
            let noLog = try ToolRunner.run(["set", "k", "v"] + options)
            #expect(noLog.status == 3)
            #expect(noLog.errors.contains("not a WhyCache datastore"), "\(noLog.errors)")
            #expect(try ToolRunner.run(["get", "k", "--state", directory + "/absent"]).status == 3)
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)

            // 2: usage errors, with the message on stderr.
            let usage: [[String]] = [
                ["no-such-command"],
                ["set", "k"] + options,
                ["set", "k", "v", "--state", directory + "/state"],
                ["set", "k", "v", "--store", "file://relative/log", "--state", directory + "/state"],
                ["set", "k", "v", "--store", "ftp://host/log", "--state", directory + "/state"],
                ["set", "", "v"] + options,
                ["set", String(repeating: "k", count: 1025), "v"] + options,
                ["set", "zz", "00", "--hex"] + options,
                ["update", "--through", "-1"] + options,
                ["stat"],
                ["follow", "--interval", "0"] + options,
            ]
            for arguments in usage {
                let result = try ToolRunner.run(arguments)
                #expect(result.status == 2, "\(arguments.prefix(3)): \(result.status) \(result.errors)")
                #expect(!result.errors.isEmpty, "\(arguments.prefix(3)) printed no message")
            }
            // Nothing was written by the refused commands.
            #expect(try ToolRunner.run(["update"] + options).lines == ["0"])
        }
    }

    @Test func hexCarriesBinaryKeysAndValues() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            try ToolRunner.run(["init-store"] + options)
            #expect(try ToolRunner.run(["set", "00ff0a", "000102feff", "--hex"] + options).lines == ["1"])
            #expect(try ToolRunner.run(["set", "00ff0b", "", "--hex"] + options).lines == ["2"])
            #expect(try ToolRunner.run(["get", "00FF0A", "--hex"] + options).lines == ["000102feff"])
            #expect(try ToolRunner.run(["get", "00ff0b", "--hex"] + options).lines == [""])
            #expect(try ToolRunner.run(["keys", "--hex", "--prefix", "00ff"] + options).lines == ["00ff0a", "00ff0b"])
            let dump = try ToolRunner.run(["dump", "--hex"] + options)
            #expect(dump.lines == [#"{"key": "00ff0a", "value": "000102feff"}"#, #"{"key": "00ff0b", "value": ""}"#])
            #expect(dump.errors.isEmpty)
            // Without --hex the bytes that are not UTF-8 are flagged.
            let lossy = try ToolRunner.run(["dump"] + options)
            #expect(lossy.status == 0)
            #expect(lossy.errors.contains("use --hex"), "\(lossy.errors)")
            #expect(try ToolRunner.run(["delete", "00ff0a", "--hex"] + options).lines == ["3"])
            #expect(try ToolRunner.run(["get", "00ff0a", "--hex"] + options).status == 1)
        }
    }

    @Test func statReportsTheStateAndTheLogAsJSON() async throws {
        try await withTemporaryDirectory { directory in
            let options = options(directory)
            try await ToolRunner.run(["init-store"] + options)
            for index in 0..<5 { try await ToolRunner.run(["set", "k\(index)", "v"] + options) }
            let store = try await FileDatastore.open(directory: directory + "/log")
            _ = try await store.append(try LogRecord([.set(key: bytes("late"), value: bytes("v"))]).encoded())

            let stat = try await ToolRunner.run(["stat", "--json"] + options)
            #expect(stat.status == 0, "\(stat.errors)")
            #expect(stat.lines.count == 1)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any])
            let state = try #require(object["state"] as? [String: Any])
            let log = try #require(object["log"] as? [String: Any])
            #expect(state["updateID"] as? Int == 5)
            #expect(state["keyCount"] as? Int == 5)
            #expect((state["fileSize"] as? Int ?? 0) > 0)
            #expect(state["freeBytes"] as? Int != nil)
            #expect(state["liveReaders"] as? Int == 0)
            #expect(log["latestUpdateID"] as? Int == 6)
            #expect(log["store"] as? String == "file://\(directory)/log")
            #expect(object["lag"] as? Int == 1)

            let text = try await ToolRunner.run(["stat"] + options)
            #expect(text.lines.contains("lag:                1 update ids"), "\(text.lines)")
            let stateOnly = try await ToolRunner.run(["stat", "--json", "--state", directory + "/state"])
            let stateObject = try JSONSerialization.jsonObject(with: Data(stateOnly.lines.joined().utf8)) as? [String: Any]
            #expect(stateObject?["log"] == nil && stateObject?["state"] != nil)
        }
    }

    @Test func verifyComparesTheStateWithTheLogKeyByKey() async throws {
        try await withTemporaryDirectory { directory in
            let options = options(directory)
            let store = try await CacheFixture.makeStore(directory)
            for index in 0..<300 {
                _ = try await store.append(try LogRecord([.set(key: bytes("k\(index % 100)"), value: bytes("v\(index)"))]).encoded())
            }
            let equal = try await ToolRunner.run(["verify"] + options)
            #expect(equal.status == 0, "\(equal.errors)")
            #expect(equal.lines == ["equal at update 300: 100 keys"])

            // Change the state file behind the log's back.
            let file = try SharedStateFile.open(at: directory + "/state")
            try file.write { transaction in
                try transaction.setValue(bytes("tampered"), forKey: bytes("k5"))
                _ = try transaction.removeValue(forKey: bytes("k7"))
                try transaction.setValue(bytes("extra"), forKey: bytes("k70x"))
            }
            let differs = try await ToolRunner.run(["verify"] + options)
            #expect(differs.status == 1)
            #expect(differs.lines == [
                #"value differs: key "k5", state value "tampered", log value "v205""#,
                #"missing from the state: key "k7", log value "v207""#,
                #"not in the log: key "k70x", state value "extra""#,
            ], "\(differs.lines)")
            #expect(differs.errors.contains("3 keys"), "\(differs.errors)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("whycache-verify.") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    @Test func followKeepsTheStateCurrentAndStopsOnSIGTERM() async throws {
        try await withTemporaryDirectory { directory in
            let options = options(directory)
            try await ToolRunner.run(["init-store"] + options)
            let follower = try ToolRunner.start(["follow", "--interval", "0.05"] + options)
            let store = try await FileDatastore.open(directory: directory + "/log")
            let id = try await store.append(try LogRecord([.set(key: bytes("pushed"), value: bytes("by the log"))]).encoded())
            var seen = false
            for _ in 0..<400 where !seen {
                seen = try await ToolRunner.run(["get", "pushed"] + options).lines == ["by the log"]
                if !seen { usleep(25_000) }
            }
            #expect(seen, "follow did not apply update \(id)")
            let stat = try await ToolRunner.run(["stat", "--json", "--state", directory + "/state"])
            let state = (try JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any])?["state"] as? [String: Any]
            #expect(state?["liveReaders"] as? Int == 1, "the follower holds the state open: \(stat.lines)")
            follower.send(SIGTERM)
            let result = await follower.finish()
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.errors.contains("update_id=\(id)") && result.errors.contains("applied the log"), "\(result.errors)")
            #expect(result.errors.hasSuffix("stopped\n"), "\(result.errors)")
        }
    }

    /// Two `follow` processes on one state file: the first polls the log,
    /// the second logs that it follows; when the first stops, the second
    /// logs that it polls, and applies what is written after.
    @Test func followElectsOnePollerPerStateFile() async throws {
        try await withTemporaryDirectory { directory in
            let options = options(directory)
            try await ToolRunner.run(["init-store"] + options)
            let first = try ToolRunner.start(["follow", "--interval", "0.05"] + options)
            let second: HelperProcess
            // A process that never logs what a read below waits for is
            // killed, so that the read ends (and the test fails) instead of
            // blocking for ever.
            let started = Mutex<[HelperProcess]>([first])
            let watchdog = DispatchWorkItem { for process in started.withLock({ $0 }) { process.send(SIGKILL) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + 240, execute: watchdog)
            defer { watchdog.cancel() }
            do {
                defer { if first.process.isRunning { first.send(SIGKILL) } }
                #expect(await first.readErrorLine { $0.contains("polling the log for the processes of this state file") } != nil)
                second = try ToolRunner.start(["follow", "--interval", "0.05"] + options)
                started.withLock { $0.append(second) }
                #expect(await second.readErrorLine { $0.contains("following another process's poller") } != nil)
                first.send(SIGTERM)
                let stopped = await first.finish()
                #expect(stopped.status == 0, "\(stopped.errors)")
                #expect(!stopped.errors.contains("following"), "\(stopped.errors)")
            }
            defer { if second.process.isRunning { second.send(SIGKILL) } }
            #expect(await second.readErrorLine { $0.contains("polling the log for the processes of this state file") } != nil)
            let store = try await FileDatastore.open(directory: directory + "/log")
            let id = try await store.append(try LogRecord([.set(key: bytes("after"), value: bytes("takeover"))]).encoded())
            #expect(await second.readErrorLine { $0.contains("update_id=\(id)") && $0.contains("applied the log") } != nil)
            #expect(try await ToolRunner.run(["get", "after"] + options).lines == ["takeover"])
            second.send(SIGTERM)
            let result = await second.finish()
            #expect(result.status == 0, "\(result.errors)")
        }
    }

    @Test func demoAndBenchRun() throws {
        let demo = try ToolRunner.run(["demo", "--seconds", "1", "--keys", "2000", "--readers", "1"])
        #expect(demo.status == 0, "\(demo.errors)")
        #expect(demo.lines.last?.hasSuffix("identical") == true, "\(demo.lines.suffix(3))")
        try withTemporaryDirectory { directory in
            // A killed benchmark's state file (no such process) is removed;
            // one of a live process (this one) is not.
            let abandoned = directory + "/whycache-bench-2147483647.state"
            let live = directory + "/whycache-bench-\(getpid()).state"
            for path in [abandoned, live] { #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))) }
            let bench = try ToolRunner.run(["bench", "state", "--keys", "2000", "--seconds", "0.2", "--rounds", "1", "--skip-overwrite", "--directory", directory])
            #expect(!FileManager.default.fileExists(atPath: abandoned))
            #expect(FileManager.default.fileExists(atPath: live))
            #expect(bench.status == 0, "\(bench.errors)")
            #expect(bench.errors.isEmpty, "progress without a terminal: \(bench.errors)")
            let metrics = try bench.lines.map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["value"] is Double || object?["value"] is Int, "\(line)")
                return object?["metric"] as? String ?? ""
            }
            #expect(metrics.contains("get_ns") && metrics.contains("load_keys_per_s"), "\(metrics)")
        }
    }

    /// `bench state --load-order key` loads every key of each shape (the
    /// reads that follow fail on a missing key) and says so in its load
    /// measurements.
    @Test(arguments: ["user", "random16", "url"])
    func benchStateLoadsInKeyOrder(shape: String) throws {
        try withTemporaryDirectory { directory in
            let bench = try ToolRunner.run([
                "bench", "state", "--keys", "300", "--key-shape", shape, "--load-order", "key", "--seconds", "0.1", "--rounds", "1",
                "--skip-overwrite", "--directory", directory,
            ])
            #expect(bench.status == 0, "\(bench.errors)")
            let notes = try bench.lines.compactMap { line -> String? in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return object?["metric"] as? String == "load_keys_per_s" ? object?["note"] as? String : nil
            }
            #expect(notes.count == 2 && notes.allSatisfy { $0.hasPrefix("key order") }, "\(notes)")
        }
    }

    /// `bench state --rewrite`: the loaded file is rewritten in key order
    /// before it is measured, and the rewritten file is the one measured
    /// (its heap, reported by file_bytes_per_key, is the rewrite's result).
    @Test func benchStateMeasuresTheRewrittenFile() throws {
        try withTemporaryDirectory { directory in
            let bench = try ToolRunner.run([
                "bench", "state", "--keys", "3000", "--key-shape", "url", "--rewrite", "--seconds", "0.1", "--rounds", "1",
                "--skip-overwrite", "--directory", directory,
            ])
            #expect(bench.status == 0, "\(bench.errors)")
            var notes: [String: String] = [:]
            for line in bench.lines {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let metric = object["metric"] as? String
                else { continue }
                notes[metric] = object["note"] as? String
            }
            let rewrite = try #require(notes["rewrite_keys_per_s"], "\(bench.lines)")
            // "heap B -> A bytes; …", and file_bytes_per_key's note starts "heap A bytes".
            let after = rewrite.split(separator: " ").dropFirst(3).first.map(String.init) ?? "?"
            #expect(notes["file_bytes_per_key"]?.hasPrefix("heap \(after) bytes") == true, "\(rewrite) / \(notes["file_bytes_per_key"] ?? "")")
        }
    }

    /// `bench state --writer-rate`: the writer beside the reader sleeps
    /// after each transaction that got ahead of its pace, so it never puts
    /// faster than asked (sleeping longer only lowers the rate).
    @Test func aPacedBenchWriterKeepsItsPace() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            _ = try SharedStateFile.open(at: path)
            let child = try ToolRunner.run([
                "bench", "child", "--role", "writer", "--state", path, "--keys", "2000", "--seconds", "0.5",
                "--start-at", "0", "--puts-per-second", "4000",
            ])
            #expect(child.status == 0, "\(child.errors)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data((child.lines.last ?? "").utf8)) as? [String: Any])
            let operations = try #require(object["operations"] as? Double)
            let seconds = try #require(object["seconds"] as? Double)
            #expect(operations >= 1000 && seconds >= 0.5, "\(object)")
            #expect(operations / seconds <= 4000, "\(object)")
        }
    }

    /// `bench state --key-shape`: the keys of each shape are the ones its
    /// documentation names (and `Benchmarks/KeyShapes/bench_shapes.c` builds
    /// for LMDB and the hash table), written here by a benchmark writer.
    @Test(arguments: ["user", "random16", "url"])
    func benchKeyShapesWriteTheKeysTheyDocument(shape: String) throws {
        func splitmix64(_ state: inout UInt64) -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func expectedKey(_ i: Int) -> [UInt8] {
            switch shape {
            case "user": return Array(("user:" + String(format: "%08d", i)).utf8)
            case "url": return Array("/api/v1/users/\(i)/settings".utf8)
            default:
                var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03
                let (a, b) = (splitmix64(&state), splitmix64(&state))
                return (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
            }
        }
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            _ = try SharedStateFile.open(at: path)
            let child = try ToolRunner.run([
                "bench", "child", "--role", "writer", "--state", path, "--keys", "20", "--key-shape", shape, "--seconds", "0.1",
                "--start-at", "0",
            ])
            #expect(child.status == 0, "\(child.errors)")
            // 1000 random puts over 20 keys touch every one of them.
            let keys = try SharedStateFile.open(at: path).snapshot().keys()
            #expect(keys == (0..<20).map(expectedKey).sorted { $0.lexicographicallyPrecedes($1) })
        }
    }

    /// `bench index-floor` (hidden): one measurement per round, naming the
    /// trie's get beside the probe.
    @Test func benchIndexFloorReportsEachRound() throws {
        let bench = try ToolRunner.run(["bench", "index-floor", "--keys", "2000", "--seconds", "0.05", "--rounds", "2"])
        #expect(bench.status == 0, "\(bench.errors)")
        let lines = try bench.lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        #expect(lines.count == 2, "\(bench.lines)")
        for (round, line) in lines.enumerated() {
            #expect(line["metric"] as? String == "index_floor_get_ns")
            #expect((line["value"] as? Double ?? 0) > 0)
            #expect((line["note"] as? String)?.hasPrefix("round \(round + 1): trie get ") == true, "\(line)")
        }
    }

    @Test func benchCoalesceMeasuresBothModesOnAFileLog() throws {
        try withTemporaryDirectory { directory in
            let bench = try ToolRunner.run([
                "bench", "coalesce", "--store", "file://\(directory)", "--tasks", "4", "--task-sets", "5", "--lone-sets", "3",
                "--directory", directory,
            ])
            #expect(bench.status == 0, "\(bench.errors)")
            let lines = try bench.lines.map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            }
            let rates = lines.filter { $0["metric"] as? String == "set_keys_per_s" }
            #expect(rates.count == 2 && lines.count == 6, "\(bench.lines)")
            #expect((rates.first?["note"] as? String)?.contains("coalescing off: 20 records for 20 sets") == true, "\(bench.lines)")
            #expect((rates.last?["note"] as? String)?.contains("coalescing on") == true, "\(bench.lines)")
            #expect(rates.allSatisfy { $0["keys"] as? Int == 20 && $0["value"] is Double })
            // The logs it wrote are gone.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        }
    }

    @Test func benchBootstrapTimesSnapshotRestoreAndCatchUpAndLeavesNoFiles() throws {
        try withTemporaryDirectory { directory in
            // The folder of a killed run (no such process) is removed.
            let abandoned = directory + "/whycache-bench-bootstrap-2147483647"
            try FileManager.default.createDirectory(atPath: abandoned, withIntermediateDirectories: false)
            #expect(FileManager.default.createFile(atPath: abandoned + "/old-machine.state", contents: Data([1, 2, 3])))
            let bench = try ToolRunner.run(["bench", "bootstrap", "--keys", "2000", "--catch-up-records", "50", "--directory", directory])
            #expect(bench.status == 0, "\(bench.errors)")
            #expect(bench.errors.isEmpty, "progress without a terminal: \(bench.errors)")
            let lines = try bench.lines.map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            }
            let metrics = [
                "bootstrap_snapshot_bytes", "bootstrap_snapshot_seconds", "bootstrap_restore_seconds", "bootstrap_catch_up_seconds",
                "bootstrap_total_seconds",
            ]
            #expect(lines.compactMap { $0["metric"] as? String } == metrics, "\(bench.lines)")
            for line in lines {
                let value = (line["value"] as? NSNumber)?.doubleValue ?? 0
                #expect(value > 0 && line["keys"] as? Int == 2000 && line["note"] is String, "\(line)")
            }
            let values = Dictionary(uniqueKeysWithValues: lines.map { ($0["metric"] as? String ?? "", ($0["value"] as? NSNumber)?.doubleValue ?? 0) })
            // 2,000 keys of 113 bytes, gzip cannot shrink the random values much.
            #expect((values["bootstrap_snapshot_bytes"] ?? 0) > 100_000, "\(values)")
            let total = (values["bootstrap_restore_seconds"] ?? 0) + (values["bootstrap_catch_up_seconds"] ?? 0)
            #expect(abs((values["bootstrap_total_seconds"] ?? 0) - total) < 1e-6, "\(values)")
            #expect((lines.last?["note"] as? String)?.contains("the new machine's 2025 keys") == true, "\(bench.lines)")
            // The state files, the snapshot and the log are gone.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        }
    }

    @Test func aFailedBenchBootstrapLeavesNoFiles() throws {
        try withTemporaryDirectory { directory in
            // The log's folder would be inside a file: the fresh log cannot be created.
            let blocker = directory + "/not-a-folder"
            #expect(FileManager.default.createFile(atPath: blocker, contents: Data([1])))
            let bench = try ToolRunner.run([
                "bench", "bootstrap", "--keys", "100", "--catch-up-records", "2", "--directory", directory, "--store", "file://\(blocker)",
            ])
            #expect(bench.status == 3, "\(bench.errors)")
            #expect(bench.lines.isEmpty, "\(bench.lines)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["not-a-folder"])
        }
    }

    @Test func progressIsDrawnOnATerminalOnly() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            try ToolRunner.run(["init-store"] + options)
            try ToolRunner.run(["set", "k", "v"] + options)
            let quiet = try ToolRunner.run(["verify"] + options)
            #expect(quiet.errors.isEmpty, "\(quiet.errors)")
            let command = ([ToolRunner.executable.path, "verify"] + options).map { "'\($0)'" }.joined(separator: " ")
            let terminal = try ToolRunner.runOnTerminal(command)
            #expect(terminal.status == 0, "\(terminal.output)")
            #expect(terminal.output.contains("verify: comparing [####################] 100%"), "\(terminal.output)")
            #expect(terminal.output.contains("keys/s"), "\(terminal.output)")
        }
    }
}
