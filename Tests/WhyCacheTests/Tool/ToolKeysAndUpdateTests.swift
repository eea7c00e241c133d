import Foundation
import Testing
import WhyCache

/// `keys --json` and the progress of a long `update` on a terminal.
@Suite struct ToolKeysAndUpdateTests {
    /// `--store` and `--state` options for `directory`.
    private func options(_ directory: String) -> [String] {
        ["--store", "file://\(directory)/log", "--state", directory + "/state"]
    }

    /// `keys --json` prints one JSON object `{"key": …}` per key, in order:
    /// a key holding a line break stays on one line; bytes that are not
    /// UTF-8 are flagged on stderr, and `--hex` prints them exactly.
    @Test func keysJSONPrintsOneObjectPerKey() throws {
        try withTemporaryDirectory { directory in
            let options = options(directory)
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)
            for key in ["b/plain", "a/line\nbreak", "c/\"quoted\""] {
                #expect(try ToolRunner.run(["set", key, "v"] + options).status == 0)
            }
            let json = try ToolRunner.run(["keys", "--json"] + options)
            #expect(json.status == 0, "\(json.errors)")
            #expect(json.errors.isEmpty, "\(json.errors)")
            #expect(json.lines == [#"{"key": "a/line\nbreak"}"#, #"{"key": "b/plain"}"#, #"{"key": "c/\"quoted\""}"#])
            let decoded = try json.lines.map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
            }
            #expect(decoded.map { $0["key"] } == ["a/line\nbreak", "b/plain", "c/\"quoted\""])
            #expect(try ToolRunner.run(["keys", "--json", "--prefix", "b/"] + options).lines == [#"{"key": "b/plain"}"#])

            #expect(try ToolRunner.run(["set", "--hex", "64ff", "00"] + options).status == 0)
            let lossy = try ToolRunner.run(["keys", "--json", "--prefix", "d"] + options)
            #expect(lossy.status == 0)
            #expect(lossy.lines == ["{\"key\": \"d\u{FFFD}\"}"])
            #expect(lossy.errors.contains("use --hex"), "\(lossy.errors)")
            let hex = try ToolRunner.run(["keys", "--json", "--hex", "--prefix", "64"] + options)
            #expect(hex.lines == [#"{"key": "64ff"}"#])
            #expect(hex.errors.isEmpty, "\(hex.errors)")
        }
    }

    /// An `update` of many records draws a progress bar when stderr is a
    /// terminal, and prints only the update id reached otherwise.
    @Test func updateShowsProgressOnATerminalOnly() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let count = 12_000
            var batch: [[UInt8]] = []
            for index in 0..<count {
                batch.append(try LogRecord([.set(key: bytes("k\(index % 500)"), value: bytes("v\(index)"))]).encoded())
                if batch.count == 1000 {
                    _ = try await store.append(contentsOf: batch)
                    batch.removeAll()
                }
            }
            let options = options(directory)
            let command = ([ToolRunner.executable.path, "update"] + options).map { "'\($0)'" }.joined(separator: " ")
            let terminal = try await ToolRunner.runOnTerminal(command)
            #expect(terminal.status == 0, "\(terminal.output)")
            #expect(terminal.output.contains("update: applying the log ["), "\(terminal.output)")
            #expect(terminal.output.contains("100%  12,000/12,000 ids"), "\(terminal.output)")
            #expect(terminal.output.contains("\(count)"), "\(terminal.output)")
            #expect(try await ToolRunner.run(["get", "k499"] + options).lines == ["v11999"])

            // Without a terminal: the id only, nothing on stderr.
            let quiet = try await ToolRunner.run(["update"] + ["--store", "file://\(directory)/log", "--state", directory + "/other"])
            #expect(quiet.status == 0, "\(quiet.errors)")
            #expect(quiet.lines == ["\(count)"])
            #expect(quiet.errors.isEmpty, "\(quiet.errors)")
        }
    }
}
