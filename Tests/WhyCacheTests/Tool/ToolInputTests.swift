import Foundation
import Testing
import WhyCache

/// Command lines the tool refuses (exit status 2) before anything is
/// written: arguments that are not UTF-8 text, prefixes no key can have,
/// malformed store URLs, a snapshot that would replace a state file.
@Suite struct ToolInputTests {
    /// Two keys that differ only in an invalid byte (`k\xff`, `k\xfe`) would
    /// both become `k\u{FFFD}`: the tool refuses them and points to `--hex`;
    /// with `--hex` the two keys stay apart.
    @Test func argumentsThatAreNotUTF8AreRefused() throws {
        try withTemporaryDirectory { directory in
            let options = "--store file://\(directory)/log --state \(directory)/state"
            #expect(try ToolRunner.run(["init-store", "--store", "file://\(directory)/log"]).status == 0)
            // Process takes arguments as Swift strings (always UTF-8): the
            // raw bytes go through the shell's printf.
            let script = "exec \"$0\" set \"$(printf 'k\\377')\" A \(options)"
            let refused = try HelperProcess(["-c", script, ToolRunner.executable.path], executable: URL(fileURLWithPath: "/bin/sh")).finish()
            #expect(refused.status == 2, "\(refused.errors)")
            #expect(refused.errors.contains("not valid UTF-8") && refused.errors.contains("--hex"), "\(refused.errors)")
            let keys = try ToolRunner.run(["keys", "--state", "\(directory)/state"])
            #expect(keys.status != 0 || keys.lines.isEmpty, "a key was written: \(keys.lines)")

            for (key, value) in [("6bff", "41"), ("6bfe", "42")] {
                let set = try ToolRunner.run(["set", "--hex", key, value] + options.split(separator: " ").map(String.init))
                #expect(set.status == 0, "\(set.errors)")
            }
            #expect(try ToolRunner.run(["keys", "--hex", "--state", "\(directory)/state"]).lines == ["6bfe", "6bff"])
        }
    }

    /// `keys --prefix` (and `dump --prefix`) with a prefix longer than any
    /// key is a usage error, not an empty listing.
    @Test func aPrefixLongerThanAnyKeyIsAUsageError() throws {
        try withTemporaryDirectory { directory in
            let options = ["--store", "file://\(directory)/log", "--state", "\(directory)/state"]
            #expect(try ToolRunner.run(["init-store", "--store", "file://\(directory)/log"]).status == 0)
            #expect(try ToolRunner.run(["set", "k", "v"] + options).status == 0)
            let long = String(repeating: "p", count: WhyCacheLimits.maximumKeyLength + 1)
            for command in ["keys", "dump"] {
                let result = try ToolRunner.run([command, "--prefix", long, "--state", "\(directory)/state"])
                #expect(result.status == 2, "\(command): \(result.errors)")
                #expect(result.errors.contains("at most \(WhyCacheLimits.maximumKeyLength)"), "\(result.errors)")
            }
            let fits = String(repeating: "p", count: WhyCacheLimits.maximumKeyLength)
            #expect(try ToolRunner.run(["keys", "--prefix", fits, "--state", "\(directory)/state"]).status == 0)
        }
    }

    /// A `--store` URL with a query parameter that has no name or no value,
    /// or a replica lag out of range, is a usage error that says which,
    /// never a crash (fuzz findings: `?=` once trapped the URL parser, and
    /// so did a `replica-lag` of 37 digits, in its conversion to
    /// milliseconds).
    @Test func queryParametersWithoutANameOrAValueAreUsageErrors() throws {
        try withTemporaryDirectory { directory in
            let lag = "replica-lag must be a positive number of seconds up to 86400"
            let timeout = "connect-timeout must be a positive number of seconds up to 3600"
            let cases = [
                ("mysql://u@h:3306/app?=", "has no name"), ("mysql://u@h/app?table=t&=x", "has no name"),
                ("mysql://u@h/app?table=", "table needs a value"), ("mysql://u@h/app?table", "table needs a value"),
                ("mysql://u@h/db?replica=[e101f:8]&replica-lag=6666666666666666666666666666666666665", lag),
                ("mysql://u@h/db?replica-lag=86400.001", lag), ("mysql://u@h/db?replica-lag=inf", lag),
                ("mysql://u@h/db?replica-lag=nan", lag), ("mysql://u@h/db?replica-lag=0", lag),
                ("mysql://u@h/db?connect-timeout=0", timeout), ("mysql://u@h/db?connect-timeout=3600.5", timeout),
                ("mysql://u@h/db?connect-timeout=soon", timeout), ("mysql://u@h/db?connect-timeout=", "connect-timeout needs a value"),
            ]
            for (url, message) in cases {
                let result = try ToolRunner.run(["stat", "--store", url, "--state", "\(directory)/state"])
                #expect(result.status == 2, "\(url): \(result.errors)")
                #expect(result.errors.contains(message), "\(url): \(result.errors)")
            }
        }
    }

    /// `snapshot --out` naming the state file itself, or another state
    /// file, is refused and leaves both files as they were.
    @Test func aSnapshotNeverReplacesAStateFile() throws {
        try withTemporaryDirectory { directory in
            let state = "\(directory)/state"
            let other = "\(directory)/other"
            #expect(try ToolRunner.run(["init-store", "--store", "file://\(directory)/log"]).status == 0)
            #expect(try ToolRunner.run(["set", "k", "v", "--store", "file://\(directory)/log", "--state", state]).status == 0)
            #expect(try ToolRunner.run(["update", "--store", "file://\(directory)/log", "--state", other]).status == 0)
            for out in [state, other] {
                let before = try Data(contentsOf: URL(fileURLWithPath: out))
                let result = try ToolRunner.run(["snapshot", "--state", state, "--out", out])
                #expect(result.status == 2, "\(out): \(result.errors)")
                #expect(result.errors.contains("is a WhyCache state file"), "\(result.errors)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == before)
            }
            #expect(try ToolRunner.run(["get", "k", "--state", state]).lines == ["v"])
            #expect(try ToolRunner.run(["snapshot", "--state", state, "--out", "\(directory)/snapshot"]).status == 0)
        }
    }
}
