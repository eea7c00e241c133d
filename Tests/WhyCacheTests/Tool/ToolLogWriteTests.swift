import Foundation
import Testing
import WhyCache

/// `set` and `delete` from a deploy or CI host: without `--state` they
/// write the log only, `--value-file` carries values of any size and any
/// bytes, and `set --from-json` writes many keys from JSON lines (the form
/// `dump` prints), checking the whole input before writing anything.
@Suite struct ToolLogWriteTests {
    /// `--store` for the log in `directory`.
    private func store(_ directory: String) -> [String] {
        ["--store", "file://\(directory)/log"]
    }

    /// The value of `key` in the state file at `path`, read with the library.
    private func value(_ key: [UInt8], in path: String) throws -> [UInt8]? {
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        let file = try SharedStateFile.open(at: path, options: options)
        return try file.value(forKey: key)
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
            #expect(try await ToolRunner.run(["init-store"] + store).status == 0)
            let set = try await ToolRunner.run(["set", "flag/a", "on"] + store)
            #expect(set.status == 0, "\(set.errors)")
            #expect(set.lines == ["1"])
            #expect(try await ToolRunner.run(["set", "flag/b", "off"] + store).lines == ["2"])
            let delete = try await ToolRunner.run(["delete", "flag/a", "never-set"] + store)
            #expect(delete.status == 0, "\(delete.errors)")
            #expect(delete.lines == ["3"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["log"], "a state file was created")
            #expect(try await latestUpdateID(directory) == 3)

            let host = ["--state", directory + "/host"]
            #expect(try await ToolRunner.run(["update"] + store + host).lines == ["3"])
            #expect(try await ToolRunner.run(["get", "flag/b"] + host).lines == ["off"])
            #expect(try await ToolRunner.run(["get", "flag/a"] + host).status == 1)

            // With --state, read-your-writes without an update.
            #expect(try await ToolRunner.run(["set", "flag/c", "on"] + store + host).lines == ["4"])
            #expect(try await ToolRunner.run(["get", "flag/c"] + host).lines == ["on"])
            #expect(try await ToolRunner.run(["delete", "flag/c"] + store + host).lines == ["5"])
            #expect(try await ToolRunner.run(["get", "flag/c"] + host).status == 1)

            // --prefix describes a state file: without --state it is a usage error.
            for arguments in [["set", "flag/d", "x", "--prefix", "flag/"], ["delete", "flag/b", "--prefix", "flag/"]] {
                let refused = try await ToolRunner.run(arguments + store)
                #expect(refused.status == 2, "\(arguments): \(refused.errors)")
                #expect(refused.errors.contains("--prefix"), "\(refused.errors)")
            }
            #expect(try await latestUpdateID(directory) == 5)
        }
    }

    /// `--value-file PATH|-` stores the file's bytes exactly, whatever they
    /// are (not UTF-8, line breaks, a final line break) and however large
    /// (here 3 MiB, past one default 1 MiB record and argv's limit), with
    /// and without `--state`; a VALUE of `-` or `@file` stays literal.
    @Test func valueFilesCarryAnyBytesOfAnySize() throws {
        try withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try ToolRunner.run(["init-store"] + store).status == 0)
            let large = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let largePath = directory + "/large.bin"
            try Data(large).write(to: URL(fileURLWithPath: largePath))
            let small: [UInt8] = [0xFF, 0x00, 0x0A, 0x41, 0x0A]
            let smallPath = directory + "/small.bin"
            try Data(small).write(to: URL(fileURLWithPath: smallPath))

            let set = try ToolRunner.run(["set", "blob/large", "--value-file", largePath] + store)
            #expect(set.status == 0, "\(set.errors)")
            #expect(set.lines == ["1"])
            let fromStdin = try HelperProcess(
                ["set", "--hex", "626c6f622f736d616c6c", "--value-file", "-"] + store, executable: ToolRunner.executable, input: smallPath
            ).finish()
            #expect(fromStdin.status == 0, "\(fromStdin.errors)")
            #expect(fromStdin.lines == ["2"])
            #expect(try ToolRunner.run(["set", "literal/dash", "-"] + store).status == 0)
            #expect(try ToolRunner.run(["set", "literal/at", "@\(smallPath)"] + store).status == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["large.bin", "log", "small.bin"])

            let host = directory + "/host"
            #expect(try ToolRunner.run(["update", "--state", host] + store).lines == ["4"])
            #expect(try value(bytes("blob/large"), in: host) == large)
            #expect(try value(bytes("blob/small"), in: host) == small)
            #expect(try value(bytes("literal/dash"), in: host) == bytes("-"))
            #expect(try value(bytes("literal/at"), in: host) == bytes("@\(smallPath)"))

            // With --state, the state file holds the large value on return.
            let writer = directory + "/writer"
            let withState = try ToolRunner.run(["set", "blob/again", "--value-file", largePath, "--state", writer] + store)
            #expect(withState.status == 0, "\(withState.errors)")
            #expect(try value(bytes("blob/again"), in: writer) == large)
        }
    }

    /// A value file beyond 64 MiB, a VALUE next to `--value-file`, or no
    /// value at all are usage errors (status 2); a missing file is status 3.
    /// Nothing is written.
    @Test func badValueFilesAreRefusedBeforeWriting() async throws {
        try await withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try await ToolRunner.run(["init-store"] + store).status == 0)
            let tooLarge = directory + "/too-large.bin"
            #expect(FileManager.default.createFile(atPath: tooLarge, contents: nil))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tooLarge))
            try handle.truncate(atOffset: UInt64(WhyCacheLimits.maximumValueLength) + 1)
            try handle.close()

            let oversized = try await ToolRunner.run(["set", "k", "--value-file", tooLarge] + store)
            #expect(oversized.status == 2, "\(oversized.errors)")
            #expect(oversized.errors.contains("64 MiB"), "\(oversized.errors)")
            let both = try await ToolRunner.run(["set", "k", "v", "--value-file", tooLarge] + store)
            #expect(both.status == 2, "\(both.errors)")
            let missing = try await ToolRunner.run(["set", "k", "--value-file", directory + "/absent"] + store)
            #expect(missing.status == 3, "\(missing.errors)")
            #expect(missing.errors.contains("absent"), "\(missing.errors)")
            #expect(try await latestUpdateID(directory) == 0)
        }
    }

    /// JSON lines set and delete keys in order, with JSON escapes, blank
    /// lines, CRLF line ends and no final line break; all of them fit in
    /// one record, so the command prints that record's id.
    @Test func fromJSONSetsAndDeletesKeysInOrder() async throws {
        try await withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try await ToolRunner.run(["init-store"] + store).status == 0)
            let input = directory + "/changes.jsonl"
            let lines = [
                #"{"key": "user/1", "value": "ada"}"#,
                "",
                #"  { "value" : "grace \"amazing\" hopper", "key":"user/2" }  "#,
                #"{"key": "user/3", "value": "x"}"# + "\r",
                #"{"key": "user/3", "delete": true}"#,
                #"{"key": "esc/\n\t\u00e9\ud83d\ude00\/", "value": "line\nbreak"}"#,
                #"{"key": "user/1", "value": "ada lovelace"}"#,
            ]
            try lines.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)

            let set = try await ToolRunner.run(["set", "--from-json", input] + store)
            #expect(set.status == 0, "\(set.errors)")
            #expect(set.lines == ["1"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["changes.jsonl", "log"])
            let host = directory + "/host"
            #expect(try await ToolRunner.run(["update", "--state", host] + store).lines == ["1"])
            #expect(try value(bytes("user/1"), in: host) == bytes("ada lovelace"))
            #expect(try value(bytes("user/2"), in: host) == bytes(#"grace "amazing" hopper"#))
            #expect(try value(bytes("user/3"), in: host) == nil)
            #expect(try value(bytes("esc/\n\t\u{e9}\u{1F600}/"), in: host) == bytes("line\nbreak"))

            // From stdin, and with --state: read-your-writes.
            let more = directory + "/more.jsonl"
            try (#"{"key": "user/4", "value": "four"}"# + "\n").write(toFile: more, atomically: true, encoding: .utf8)
            let fromStdin = try await HelperProcess(
                ["set", "--from-json", "-", "--state", host] + store, executable: ToolRunner.executable, input: more
            ).finish()
            #expect(fromStdin.status == 0, "\(fromStdin.errors)")
            #expect(fromStdin.lines == ["2"])
            #expect(try await ToolRunner.run(["get", "user/4", "--state", host]).lines == ["four"])

            // An empty input writes nothing and prints the log's latest id.
            let empty = directory + "/empty.jsonl"
            try "\n \n".write(toFile: empty, atomically: true, encoding: .utf8)
            #expect(try await ToolRunner.run(["set", "--from-json", empty] + store).lines == ["2"])
            #expect(try await latestUpdateID(directory) == 2)
        }
    }

    /// An input larger than one record is split into several consecutive
    /// records of one append; the command prints the last one's id.
    @Test func fromJSONSplitsALargeInputIntoRecords() async throws {
        try await withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try await ToolRunner.run(["init-store"] + store).status == 0)
            let filler = String(repeating: "v", count: 1000)
            let input = directory + "/many.jsonl"
            let text = (0..<3000).map { #"{"key": "k\#($0)", "value": "\#($0)\#(filler)"}"# }.joined(separator: "\n") + "\n"
            try text.write(toFile: input, atomically: true, encoding: .utf8)

            let set = try await ToolRunner.run(["set", "--from-json", input] + store)
            #expect(set.status == 0, "\(set.errors)")
            let latest = try await latestUpdateID(directory)
            #expect(latest >= 3, "3 MB of keys should need at least 3 records of 1 MiB")
            #expect(set.lines == [String(latest)])
            let host = directory + "/host"
            #expect(try await ToolRunner.run(["update", "--state", host] + store).lines == [String(latest)])
            #expect(try await ToolRunner.run(["keys", "--state", host]).lines.count == 3000)
            for index in [0, 1234, 2999] {
                #expect(try value(bytes("k\(index)"), in: host) == bytes("\(index)\(filler)"))
            }
        }
    }

    /// Every kind of bad line is a usage error (status 2) that names the
    /// line, and nothing is written, also with `--state` (no state file is
    /// created) and when the bad line comes after good ones.
    @Test func aBadJSONLineWritesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let store = store(directory)
            #expect(try await ToolRunner.run(["init-store"] + store).status == 0)
            let good = #"{"key": "good", "value": "v"}"#
            let goodHex = #"{"key": "676f6f64", "value": "76"}"#
            let bad: [(line: String, hex: Bool, says: String)] = [
                (#"{"key": "a"}"#, false, "neither"),
                (#"{"value": "a"}"#, false, "no \"key\""),
                (#"{"key": "a", "value": 1}"#, false, "must be a string"),
                (#"{"key": "a", "value": null}"#, false, "must be a string"),
                (#"{"key": "a", "value": "b", "vaule": "c"}"#, false, "unknown member"),
                (#"{"key": "a", "delete": false}"#, false, "must be true"),
                (#"{"key": "a", "value": "b", "delete": true}"#, false, "both"),
                (#"{"key": "a", "key": "b", "value": "c"}"#, false, "twice"),
                (#"{"key": "a", "value": "b"} {"key": "c", "value": "d"}"#, false, "after the object"),
                (#"["a", "b"]"#, false, "JSON object"),
                (#"{"key": "a", "value": "b""#, false, "expected , or }"),
                (#"{"key": "a", "value": "b}"#, false, "no closing quote"),
                (#"{"key": "\ud800", "value": "b"}"#, false, "surrogate"),
                (#"{"key": "a\q", "value": "b"}"#, false, "unknown escape"),
                ("{\"key\": \"a\tb\", \"value\": \"c\"}", false, "control character"),
                (#"{"key": "", "value": "b"}"#, false, "key is empty"),
                (#"{"key": "\#(String(repeating: "k", count: 1025))", "value": "b"}"#, false, "at most 1024"),
                (#"{"key": "zz", "value": "00"}"#, true, "not hexadecimal"),
            ]
            for (index, item) in bad.enumerated() {
                let input = directory + "/bad\(index).jsonl"
                let good = item.hex ? goodHex : good
                try [good, good, item.line, good].joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
                let arguments = ["set", "--from-json", input, "--state", directory + "/state"] + (item.hex ? ["--hex"] : []) + store
                let result = try await ToolRunner.run(arguments)
                #expect(result.status == 2, "\(item.line): \(result.status) \(result.errors)")
                #expect(result.errors.contains("--from-json line 3"), "\(item.line): \(result.errors)")
                #expect(result.errors.contains(item.says), "\(item.line): \(result.errors)")
                #expect(result.lines.isEmpty)
            }
            // Bytes that are not UTF-8, given raw in the line.
            let raw = directory + "/raw.jsonl"
            try Data(Array(#"{"key": "k"#.utf8) + [0xFF] + Array(#"", "value": "v"}"#.utf8)).write(to: URL(fileURLWithPath: raw))
            let notUTF8 = try await ToolRunner.run(["set", "--from-json", raw] + store)
            #expect(notUTF8.status == 2, "\(notUTF8.errors)")
            #expect(notUTF8.errors.contains("line 1") && notUTF8.errors.contains("--hex"), "\(notUTF8.errors)")

            // KEY or --value-file next to --from-json.
            let input = directory + "/bad0.jsonl"
            #expect(try await ToolRunner.run(["set", "k", "--from-json", input] + store).status == 2)
            #expect(try await ToolRunner.run(["set", "--value-file", input, "--from-json", input] + store).status == 2)

            #expect(try await latestUpdateID(directory) == 0)
            #expect(!FileManager.default.fileExists(atPath: directory + "/state"), "a refused write created the state file")
        }
    }

    /// `dump | set --from-json -` copies a state's text keys and values to
    /// another log exactly (quotes, backslashes, control characters, line
    /// breaks); `dump --hex | set --from-json - --hex` copies any bytes.
    @Test func dumpOutputRoundTripsThroughFromJSON() throws {
        try withTemporaryDirectory { directory in
            let source = ["--store", "file://\(directory)/source", "--state", directory + "/source.state"]
            #expect(try ToolRunner.run(["init-store"] + source).status == 0)
            let text: [(String, String)] = [
                ("plain", "value"), ("quote\"back\\slash", "tab\there"), ("line\nbreak", "\u{1}\u{1F}\u{7F}"),
                ("unicode/é/😀", ""), ("slash/", "</script>"),
            ]
            for (key, value) in text {
                #expect(try ToolRunner.run(["set", key, value] + source).status == 0)
            }
            #expect(try ToolRunner.run(["set", "--hex", "00ff", "fe0a00"] + source).status == 0)

            // The text round trip, on a state holding only text.
            let dump = directory + "/dump.jsonl"
            let textDump = try ToolRunner.run(["dump", "--state", directory + "/source.state"])
            let textLines = textDump.lines.filter { !$0.contains("\u{FFFD}") }
            #expect(textLines.count == text.count)
            try (textLines.joined(separator: "\n") + "\n").write(toFile: dump, atomically: true, encoding: .utf8)
            let textCopy = ["--store", "file://\(directory)/text", "--state", directory + "/text.state"]
            #expect(try ToolRunner.run(["init-store"] + textCopy).status == 0)
            let copied = try HelperProcess(["set", "--from-json", "-"] + textCopy, executable: ToolRunner.executable, input: dump).finish()
            #expect(copied.status == 0, "\(copied.errors)")
            #expect(try ToolRunner.run(["dump", "--state", directory + "/text.state"]).lines == textLines)

            // The hex round trip copies everything.
            let hexDump = try ToolRunner.run(["dump", "--hex", "--state", directory + "/source.state"])
            #expect(hexDump.lines.count == text.count + 1)
            try (hexDump.lines.joined(separator: "\n") + "\n").write(toFile: dump, atomically: true, encoding: .utf8)
            let hexCopy = ["--store", "file://\(directory)/hex"]
            #expect(try ToolRunner.run(["init-store"] + hexCopy).status == 0)
            let hexCopied = try HelperProcess(["set", "--from-json", "-", "--hex"] + hexCopy, executable: ToolRunner.executable, input: dump)
                .finish()
            #expect(hexCopied.status == 0, "\(hexCopied.errors)")
            #expect(try ToolRunner.run(["update", "--state", directory + "/hex.state"] + hexCopy).status == 0)
            #expect(try ToolRunner.run(["dump", "--hex", "--state", directory + "/hex.state"]).lines == hexDump.lines)
        }
    }
}
