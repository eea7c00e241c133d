import Foundation
import Testing
import WhyCache

/// `set` and `delete` from a deploy or CI host: without `--state` they
/// write the log only, and `--value-file` carries values of any size and
/// any bytes.
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
            #expect(try ToolRunner.run(["init-store"] + store).status == 0)
            let tooLarge = directory + "/too-large.bin"
            #expect(FileManager.default.createFile(atPath: tooLarge, contents: nil))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tooLarge))
            try handle.truncate(atOffset: UInt64(WhyCacheLimits.maximumValueLength) + 1)
            try handle.close()

            let oversized = try ToolRunner.run(["set", "k", "--value-file", tooLarge] + store)
            #expect(oversized.status == 2, "\(oversized.errors)")
            #expect(oversized.errors.contains("64 MiB"), "\(oversized.errors)")
            let both = try ToolRunner.run(["set", "k", "v", "--value-file", tooLarge] + store)
            #expect(both.status == 2, "\(both.errors)")
            let missing = try ToolRunner.run(["set", "k", "--value-file", directory + "/absent"] + store)
            #expect(missing.status == 3, "\(missing.errors)")
            #expect(missing.errors.contains("absent"), "\(missing.errors)")
            #expect(try await latestUpdateID(directory) == 0)
        }
    }
}
