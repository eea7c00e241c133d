import Foundation
import Testing
import WhyCache

/// `--prefix` on the commands that create state files, the prefixes in
/// `stat`, and snapshots of subscribed states through `snapshot` and
/// `restore`, as processes.
@Suite struct SubscriptionToolTests {
    /// The `state` object of `stat --json` for `path` (with `extra` options).
    private func statState(_ path: String, _ extra: [String] = []) throws -> [String: Any]? {
        let stat = try ToolRunner.run(["stat", "--json", "--state", path] + extra)
        return (try JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any])?["state"] as? [String: Any]
    }

    @Test func prefixCreatesASubscribedStateThatStatShows() throws {
        try withTemporaryDirectory { directory in
            let options = ["--store", "file://\(directory)/log", "--state", directory + "/state"]
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)
            #expect(try ToolRunner.run(["set", "user/1", "ada", "--prefix", "user/"] + options).lines == ["1"])
            // Later commands keep the file's prefixes without naming them.
            #expect(try ToolRunner.run(["set", "other", "x"] + options).lines == ["2"])
            #expect(try ToolRunner.run(["get", "user/1"] + options).lines == ["ada"])
            #expect(try ToolRunner.run(["get", "other"] + options).status == 1)
            #expect(try ToolRunner.run(["keys"] + options).lines == ["user/1"])
            #expect(try ToolRunner.run(["update", "--prefix", "user/", "--prefix", "user/x"] + options).lines == ["2"])

            #expect(try statState(directory + "/state")?["subscribedPrefixes"] as? [String] == ["user/"])
            #expect(try statState(directory + "/state", ["--hex"])?["subscribedPrefixes"] as? [String] == ["757365722f"])
            #expect(try ToolRunner.run(["stat", "--state", directory + "/state"]).lines.contains(#"subscribed to:      "user/""#))
            #expect(try ToolRunner.run(["verify"] + options).lines == ["equal at update 2: 1 keys"])

            let plain = ["--store", "file://\(directory)/log", "--state", directory + "/plain"]
            #expect(try ToolRunner.run(["update"] + plain).lines == ["2"])
            #expect(try statState(directory + "/plain")?["subscribedPrefixes"] as? [String] == [])
            #expect(try ToolRunner.run(["stat", "--state", directory + "/plain"]).lines.contains("subscribed to:      every key"))
            let binary = ["--store", "file://\(directory)/log", "--state", directory + "/binary"]
            #expect(try ToolRunner.run(["update", "--hex", "--prefix", "00ff", "--prefix", "75"] + binary).lines == ["2"])
            #expect(try statState(directory + "/binary", ["--hex"])?["subscribedPrefixes"] as? [String] == ["00ff", "75"])
            #expect(try ToolRunner.run(["keys"] + binary).lines == ["user/1"])

            // Other prefixes: the file is kept and the command fails (3).
            let refused = try ToolRunner.run(["update", "--prefix", "other"] + options)
            #expect(refused.status == 3)
            #expect(refused.errors.contains(#"subscribes to the keys under "user/", but the cache is configured for the keys under "other""#),
                    "\(refused.errors)")
            #expect(try ToolRunner.run(["update", "--prefix", "user/"] + plain).status == 3)
            // More prefixes than a state file holds: a usage error (2).
            let tooMany = try ToolRunner.run(["update"] + (0..<65).flatMap { ["--prefix", "p\($0)/"] } + ["--state", directory + "/many", "--store", "file://\(directory)/log"])
            #expect(tooMany.status == 2, "\(tooMany.errors)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/many"))
        }
    }

    @Test func aSubscribedSnapshotRestoresWithItsPrefixesAndIsRefusedOntoOtherPrefixes() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            for index in 0..<120 {
                let operations: [LogOperation] = [
                    .set(key: bytes("g\(index % 10)"), value: bytes("\(index)")), .set(key: bytes("n\(index % 30)"), value: bytes("\(index)")),
                ] + (index % 7 == 6 ? [.delete(key: bytes("n1\(index % 10)"))] : [])
                _ = try await store.append(try LogRecord(operations).encoded())
            }
            let prefixes = [bytes("g"), bytes("n1")]
            let expected = try await CacheFixture.replay(store).filter { entry in prefixes.contains { entry.key.starts(with: $0) } }
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/source", "--prefix", "n1", "--prefix", "g"]).lines == ["120"])
            let snapshot = try await ToolRunner.run(["snapshot", "--state", directory + "/source", "--out", directory + "/snapshot", "--gzip"])
            #expect(snapshot.status == 0, "\(snapshot.errors)")

            // Onto an empty path: the file gets the snapshot's prefixes.
            let restored = try await ToolRunner.run(["restore", "--from", directory + "/snapshot", "--state", directory + "/copy"])
            #expect(restored.lines == ["restored update 120: \(expected.count) keys into \(directory)/copy"], "\(restored.errors)")
            #expect(try statState(directory + "/copy")?["subscribedPrefixes"] as? [String] == ["g", "n1"])
            _ = try await store.append(try LogRecord([.set(key: bytes("n15"), value: bytes("late")), .set(key: bytes("z"), value: [])]).encoded())
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/copy"]).lines == ["121"])
            #expect(try await ToolRunner.run(["get", "n15", "--state", directory + "/copy"]).lines == ["late"])
            #expect(try await ToolRunner.run(["get", "z", "--state", directory + "/copy"]).status == 1)
            let later = try await CacheFixture.replay(store).filter { entry in prefixes.contains { entry.key.starts(with: $0) } }
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", directory + "/copy"]).lines == ["equal at update 121: \(later.count) keys"])
            // Asked for with --prefix, in another order: the same.
            #expect(try await ToolRunner.run(["restore", "--from", directory + "/snapshot", "--state", directory + "/asked", "--prefix", "n1", "--prefix", "g"]).status == 0)

            // Onto a file with other prefixes, or none: refused (3), the file untouched.
            #expect(try await ToolRunner.run(["update", "--through", "10", "--store", log, "--state", directory + "/plain"]).lines == ["10"])
            #expect(try await ToolRunner.run(["update", "--through", "10", "--store", log, "--state", directory + "/other", "--prefix", "g"]).lines == ["10"])
            for name in ["plain", "other"] {
                let before = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
                let refused = try await ToolRunner.run(["restore", "--from", directory + "/snapshot", "--state", "\(directory)/\(name)", "--force"])
                #expect(refused.status == 3, "\(name): \(refused.errors)")
                #expect(refused.errors.contains(#"the snapshot holds the keys under "g", "n1", but the state file subscribes to"#), "\(refused.errors)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)")) == before, "\(name) changed")
            }
            // --prefix that differs from the snapshot's, onto an empty path.
            let asked = try await ToolRunner.run(["restore", "--from", directory + "/snapshot", "--state", directory + "/new", "--prefix", "g"])
            #expect(asked.status == 3, "\(asked.errors)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/new"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".restoring.") }.isEmpty)
        }
    }

    /// `follow --prefix` creates a subscribed state and keeps it current with
    /// the keys under its prefix only: keys written under other prefixes go
    /// to the log but never into this file.
    @Test func followWithAPrefixKeepsOnlyItsKeys() throws {
        try withTemporaryDirectory { directory in
            let options = ["--store", "file://\(directory)/log", "--state", directory + "/state"]
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)
            let follower = try ToolRunner.start(["follow", "--interval", "0.05", "--prefix", "user/"] + options)
            // Written through another state file, so that only the follower
            // brings them into this one.
            let writer = ["--store", "file://\(directory)/log", "--state", directory + "/writer"]
            for index in 0..<5 {
                #expect(try ToolRunner.run(["set", "user/\(index)", "u\(index)"] + writer).status == 0)
                #expect(try ToolRunner.run(["set", "group/\(index)", "g\(index)"] + writer).status == 0)
            }
            let last = try ToolRunner.run(["set", "user/last", "done"] + writer).lines
            var seen = false
            for _ in 0..<400 where !seen {
                seen = try ToolRunner.run(["get", "user/last"] + options).lines == ["done"]
                if !seen { usleep(25_000) }
            }
            #expect(seen, "follow did not apply update \(last)")
            follower.send(SIGTERM)
            let result = follower.finish()
            #expect(result.status == 0, "\(result.errors)")
            let keys = try ToolRunner.run(["keys"] + options).lines
            #expect(keys == (0..<5).map { "user/\($0)" } + ["user/last"], "\(keys)")
            #expect(try statState(directory + "/state")?["subscribedPrefixes"] as? [String] == ["user/"])
        }
    }
}
