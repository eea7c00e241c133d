import Foundation
import Testing
import WhyCache

/// `whycache-tool snapshot` and `restore` as processes: snapshots taken
/// while another process writes, restores under a reading process, restore
/// followed by an update after a history rewrite, and damaged snapshots.
@Suite struct SnapshotToolTests {
    /// Appends `count` records that each set `g0…g9` to one value, the
    /// record's number, starting at `start`.
    private func writeGroups(_ store: any Datastore, _ range: Range<Int>) async throws {
        for index in range {
            let operations: [LogOperation] = (0..<10).map { .set(key: bytes("g\($0)"), value: bytes("\(index)")) }
                + [.set(key: bytes("n\(index % 40)"), value: bytes("\(index)"))]
            _ = try await store.append(try LogRecord(operations).encoded())
        }
    }

    /// The contents of the state file at `path`.
    private func contents(of path: String) throws -> [[UInt8]: [UInt8]] {
        let view = try SharedStateFile.open(at: path).snapshot()
        defer { view.close() }
        return Dictionary(uniqueKeysWithValues: try view.entries().map { ($0.key, $0.value) })
    }

    /// The update id a `restore` printed.
    private func restoredID(_ lines: [String]) -> UInt64? {
        lines.first.flatMap { $0.split(separator: " ").dropFirst(2).first }.flatMap { UInt64($0.dropLast()) }
    }

    @Test func aSnapshotTakenWhileAnotherProcessWritesIsTheLogsStateAtItsUpdateID() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            let writer = try HelperProcess(["cache-set-forever", directory + "/log", directory + "/a", "w"])
            _ = await writer.readLine { $0.hasPrefix("set 300 ") }
            var restored: [UInt64] = []
            for (round, compression) in [[], ["--gzip"], ["--gzip", "--level", "1"]].enumerated() {
                let file = "\(directory)/snapshot-\(round)"
                // Through a pipe, as cron would run it.
                let tool = ToolRunner.executable.path
                let shell = try await HelperProcess(["-c", "'\(tool)' snapshot --state '\(directory)/a' --out - \(compression.joined(separator: " ")) > '\(file)'"],
                                              executable: URL(fileURLWithPath: "/bin/sh")).finish()
                #expect(shell.status == 0, "\(shell.errors)")
                let restore = try await ToolRunner.run(["restore", "--from", file, "--state", "\(directory)/copy-\(round)"])
                #expect(restore.status == 0, "\(restore.errors)")
                let id = try #require(restoredID(restore.lines), "\(restore.lines)")
                restored.append(id)
                #expect(try contents(of: "\(directory)/copy-\(round)") == (try await CacheFixture.replay(store, through: id)))
                // The next snapshot comes after a write that returned after this one's id.
                let later = await writer.readLine { line in line.split(separator: " ").last.flatMap { UInt64($0) }.map { $0 > id } ?? false }
                #expect(later != nil, "the writer stopped")
            }
            writer.send(SIGKILL)
            await writer.finish()
            #expect(restored == restored.sorted() && Set(restored).count == 3, "\(restored)")

            // A snapshot file appears complete or not at all, and stdin works too.
            let written = try await ToolRunner.run(["snapshot", "--state", directory + "/a", "--out", directory + "/file.snapshot", "--gzip"])
            #expect(written.status == 0, "\(written.errors)")
            #expect(written.lines.first?.hasPrefix("snapshot at update ") == true, "\(written.lines)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".partial.") }.isEmpty)
            let fromStdin = try await ToolRunner.run(["restore", "--from", "-", "--state", directory + "/stdin"], input: directory + "/file.snapshot")
            #expect(fromStdin.status == 0, "\(fromStdin.errors)")
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", directory + "/stdin"]).status == 0)
        }
    }

    @Test func aRestoreUnderAReadingProcessNeitherFailsNorTearsAReadAndTheReaderMovesOn() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            try await writeGroups(store, 1..<201)
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/source"]).lines == ["200"])
            #expect(try await ToolRunner.run(["snapshot", "--state", directory + "/source", "--out", directory + "/at-200"]).status == 0)
            try await writeGroups(store, 201..<301)
            #expect(try await ToolRunner.run(["update", "--through", "100", "--store", log, "--state", directory + "/host"]).lines == ["100"])

            let reader = try HelperProcess(["cache-group-reader", directory + "/log", directory + "/host", directory + "/go-update", directory + "/stop"])
            #expect(await reader.readLine() == "ready")
            let restore = try await ToolRunner.run(["restore", "--from", directory + "/at-200", "--state", directory + "/host"])
            #expect(restore.status == 0, "\(restore.errors)")
            #expect(restore.lines == ["restored update 200: 50 keys into \(directory)/host"])
            usleep(100_000)  // the reader keeps reading the file it has open
            // … and moves to the restored file at its next update, which
            // only the reader makes: wait until the file shows it.
            _ = FileManager.default.createFile(atPath: directory + "/go-update", contents: nil)
            var updated = false
            for _ in 0..<400 where !updated {
                let stat = try await ToolRunner.run(["stat", "--json", "--state", directory + "/host"])
                let state = (try? JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any])?["state"] as? [String: Any]
                updated = state?["updateID"] as? Int == 300
                if !updated { usleep(25_000) }
            }
            #expect(updated, "the reader did not update the restored file")
            _ = FileManager.default.createFile(atPath: directory + "/stop", contents: nil)
            let result = await reader.finish()
            #expect(result.status == 0, "\(result.errors)")
            let words = result.lines.last?.split(separator: " ") ?? []
            #expect(words.first == "ok" && words.count == 4, "\(result.lines)")
            #expect(words.count == 4 && words[2] == "100" && words[3] == "300", "\(result.lines)")
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", directory + "/host"]).lines == ["equal at update 300: 50 keys"])
        }
    }

    @Test func aRestoredHostUpdatesThroughTheCheckpointAfterAHistoryRewrite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            try await writeGroups(store, 1..<101)
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/source"]).lines == ["100"])
            #expect(try await ToolRunner.run(["snapshot", "--state", directory + "/source", "--out", directory + "/at-100"]).status == 0)
            try await writeGroups(store, 101..<251)
            let _ = try await store.append(try LogRecord([.delete(key: bytes("n5"))]).encoded())
            let rewrite = try await ToolRunner.run(["rewrite-history", "--store", log, "--through", "200", "--scratch", directory])
            #expect(rewrite.status == 0, "\(rewrite.errors)")
            #expect(try await store.firstRetainedUpdateID() == 201)

            #expect(try await ToolRunner.run(["restore", "--from", directory + "/at-100", "--state", directory + "/new-host"]).status == 0)
            #expect(try await ToolRunner.run(["get", "n5", "--state", directory + "/new-host"]).lines == ["85"])
            let update = try await ToolRunner.run(["update", "--store", log, "--state", directory + "/new-host"])
            #expect(update.lines == ["251"], "\(update.errors)")
            #expect(try await ToolRunner.run(["get", "n5", "--state", directory + "/new-host"]).status == 1)
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", directory + "/new-host"]).lines == ["equal at update 251: 49 keys"])
            #expect(try contents(of: directory + "/new-host")[bytes("g3")] == bytes("250"))
        }
    }

    @Test func damagedSnapshotsAreRefusedAndTheStateIsUntouched() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            try await writeGroups(store, 1..<61)
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/state"]).lines == ["60"])
            for (name, flags) in [("plain", [String]()), ("gzip", ["--gzip"])] {
                #expect(try await ToolRunner.run(["snapshot", "--state", directory + "/state", "--out", "\(directory)/\(name)"] + flags).status == 0)
            }
            try await writeGroups(store, 61..<81)
            #expect(try await ToolRunner.run(["update", "--through", "30", "--store", log, "--state", directory + "/host"]).lines == ["30"])
            let before = try Data(contentsOf: URL(fileURLWithPath: directory + "/host"))

            for name in ["plain", "gzip"] {
                let good = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
                var damaged: [(String, Data)] = [("truncated", good.prefix(good.count / 2)), ("cut before the trailer", good.dropLast(3))]
                var flipped = good
                flipped[good.count / 2] ^= 0x40
                damaged.append(("a flipped byte", flipped))
                damaged.append(("empty", Data()))
                for (what, bytes) in damaged {
                    let path = "\(directory)/\(name)-damaged"
                    try bytes.write(to: URL(fileURLWithPath: path))
                    let refused = try await ToolRunner.run(["restore", "--from", path, "--state", directory + "/host"])
                    #expect(refused.status == 3, "\(name), \(what): \(refused.status) \(refused.errors)")
                    #expect(!refused.errors.isEmpty)
                    #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/host")) == before, "\(name), \(what) changed the state file")
                }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".restoring.") }.isEmpty)

            // A newer state is kept unless --force says otherwise.
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", directory + "/newer"]).lines == ["80"])
            let older = try await ToolRunner.run(["restore", "--from", directory + "/plain", "--state", directory + "/newer"])
            #expect(older.status == 3)
            #expect(older.errors.contains("80"), "\(older.errors)")
            let forced = try await ToolRunner.run(["restore", "--from", directory + "/plain", "--state", directory + "/newer", "--force"])
            #expect(forced.status == 0, "\(forced.errors)")
            #expect(try await ToolRunner.run(["restore", "--from", directory + "/gzip", "--state", directory + "/host"]).lines.first?.hasPrefix("restored update 60") == true)
        }
    }
}
