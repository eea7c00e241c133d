import Foundation
import Testing
import WhyCache

/// `set` and `delete` from a deploy or CI host: without `--state` they
/// write the log only.
@Suite struct ToolLogWriteTests {
    /// `--store` for the log in `directory`.
    private func store(_ directory: String) -> [String] {
        ["--store", "file://\(directory)/log"]
    }

    /// The log's latest update id.
    private func latestUpdateID(_ directory: String) async throws -> UInt64 {
        try await FileDatastore.open(directory: directory + "/log").latestUpdateID()
    }

    /// Without `--state`, `set` and `delete` append to the log and create no
    /// state file; hosts see the writes at their next `update`. With
    /// `--state` the state file holds the write on return, as before.
    @Test func setAndDeleteWithoutAStateFileWriteOnlyTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try ToolRunner.run(["init-store"] + store).status == 0)
            let set = try ToolRunner.run(["set", "flag/a", "on"] + store)
            #expect(set.status == 0, "\(set.errors)")
            #expect(set.lines == ["1"])
            #expect(try ToolRunner.run(["set", "flag/b", "off"] + store).lines == ["2"])
            let delete = try ToolRunner.run(["delete", "flag/a", "never-set"] + store)
            #expect(delete.status == 0, "\(delete.errors)")
            #expect(delete.lines == ["3"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["log"], "a state file was created")
            #expect(try await latestUpdateID(directory) == 3)

            let host = ["--state", directory + "/host"]
            #expect(try ToolRunner.run(["update"] + store + host).lines == ["3"])
            #expect(try ToolRunner.run(["get", "flag/b"] + host).lines == ["off"])
            #expect(try ToolRunner.run(["get", "flag/a"] + host).status == 1)

            // With --state, read-your-writes without an update.
            #expect(try ToolRunner.run(["set", "flag/c", "on"] + store + host).lines == ["4"])
            #expect(try ToolRunner.run(["get", "flag/c"] + host).lines == ["on"])
            #expect(try ToolRunner.run(["delete", "flag/c"] + store + host).lines == ["5"])
            #expect(try ToolRunner.run(["get", "flag/c"] + host).status == 1)

            // --prefix describes a state file: without --state it is a usage error.
            for arguments in [["set", "flag/d", "x", "--prefix", "flag/"], ["delete", "flag/b", "--prefix", "flag/"]] {
                let refused = try ToolRunner.run(arguments + store)
                #expect(refused.status == 2, "\(arguments): \(refused.errors)")
                #expect(refused.errors.contains("--prefix"), "\(refused.errors)")
            }
            #expect(try await latestUpdateID(directory) == 5)
        }
    }
}
