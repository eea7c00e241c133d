import Foundation
import Testing
import WhyCache

/// What the tool says about itself: each subcommand's `--help` lists only
/// the options it uses, marks the required ones, and says what it prints;
/// `--version` prints the version the README states; `follow` and
/// ``BackgroundUpdater`` share their defaults.
@Suite struct ToolHelpTests {
    /// The options of one subcommand's help.
    struct Expected: Sendable, CustomStringConvertible {
        var command: String
        /// Required options: in the usage line without brackets, "Required." in their help.
        var required: [String]
        /// Optional options that must be listed.
        var optional: [String]
        /// Options the command does not use, which its help must not mention.
        var absent: [String]

        var description: String { command }
    }

    static let commands: [Expected] = [
        Expected(command: "init-store", required: ["--store"], optional: ["--password-file", "--print-sql"], absent: ["--state", "--hex", "--prefix"]),
        Expected(
            command: "set", required: ["--store"],
            optional: ["--password-file", "--state", "--prefix", "--hex", "--value-file", "--from-json"], absent: []),
        Expected(command: "delete", required: ["--store"], optional: ["--password-file", "--state", "--prefix", "--hex"], absent: ["--value-file"]),
        Expected(command: "get", required: ["--state"], optional: ["--hex"], absent: ["--store", "--password-file", "--prefix"]),
        Expected(command: "keys", required: ["--state"], optional: ["--prefix", "--hex", "--json"], absent: ["--store", "--password-file"]),
        Expected(command: "dump", required: ["--state"], optional: ["--prefix", "--hex"], absent: ["--store", "--password-file"]),
        Expected(command: "stat", required: [], optional: ["--store", "--password-file", "--state", "--json", "--hex"], absent: ["--prefix"]),
        Expected(command: "update", required: ["--store", "--state"], optional: ["--password-file", "--prefix", "--hex", "--through"], absent: []),
        Expected(
            command: "follow", required: ["--store", "--state"], optional: ["--password-file", "--prefix", "--interval", "--maximum-backoff"],
            absent: []),
        Expected(
            command: "rewrite-history", required: ["--store", "--through"], optional: ["--password-file", "--drop-prefix", "--scratch"],
            absent: ["--state"]),
        Expected(command: "verify", required: ["--store", "--state"], optional: ["--password-file", "--prefix", "--scratch"], absent: []),
        Expected(command: "snapshot", required: ["--state", "--out"], optional: ["--gzip", "--level"], absent: ["--store", "--password-file", "--hex"]),
        Expected(command: "restore", required: ["--state", "--from"], optional: ["--force", "--prefix", "--hex"], absent: ["--store", "--password-file"]),
    ]

    @Test(arguments: commands)
    func helpListsTheOptionsACommandUses(_ expected: Expected) throws {
        let help = try ToolRunner.run([expected.command, "--help"])
        #expect(help.status == 0, "\(help.errors)")
        let text = help.lines.joined(separator: "\n")
        let usage = Self.usage(of: help.lines)
        #expect(!usage.isEmpty, "\(text)")
        for option in expected.required {
            #expect(usage.contains(" \(option) <"), "\(expected.command): \(option) is not required in \(usage)")
            #expect(!usage.contains("[\(option) "), "\(expected.command): \(option) is optional in \(usage)")
            #expect(Self.help(of: option, in: help.lines).contains("Required."), "\(expected.command): \(option) is not marked required")
        }
        for option in expected.optional {
            #expect(text.contains(option), "\(expected.command) does not list \(option)")
            #expect(!Self.help(of: option, in: help.lines).contains("Required."), "\(expected.command): \(option) is marked required")
        }
        for option in expected.absent {
            #expect(!text.contains(option), "\(expected.command) lists \(option), which it does not use")
        }
        #expect(text.lowercased().contains("print"), "\(expected.command) does not say what it prints")
    }

    /// The options a command does not use are still accepted (and
    /// ignored), so scripts may pass `--store` and `--state` everywhere.
    @Test func unusedStoreAndStateOptionsAreAccepted() throws {
        try withTemporaryDirectory { directory in
            let options = ["--store", "file://\(directory)/log", "--state", directory + "/state"]
            #expect(try ToolRunner.run(["init-store"] + options).status == 0)
            #expect(try ToolRunner.run(["set", "k", "v"] + options).status == 0)
            #expect(try ToolRunner.run(["get", "k"] + options).lines == ["v"])
            #expect(try ToolRunner.run(["keys"] + options).lines == ["k"])
            #expect(try ToolRunner.run(["rewrite-history", "--through", "latest"] + options).status == 0)
            // Checked wherever they appear: a URL with a password is refused.
            let withPassword = try ToolRunner.run(["get", "k", "--state", directory + "/state", "--store", "mysql://u:secret-4411@h/db"])
            #expect(withPassword.status == 2)
            #expect(!withPassword.errors.contains("secret-4411"), "\(withPassword.errors)")
        }
    }

    /// `--version` prints the package version, which the README's tool
    /// section states.
    @Test func versionPrintsThePackageVersion() throws {
        let result = try ToolRunner.run(["--version"])
        #expect(result.status == 0, "\(result.errors)")
        let version = try #require(result.lines.first)
        #expect(result.lines.count == 1)
        #expect(version.wholeMatch(of: /0\.\d+\.\d+/) != nil, "\(version)")
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        #expect(text.contains("whycache-tool --version` prints `\(version)`"), "the README does not state version \(version)")
    }

    /// `follow --interval` and `--maximum-backoff` default to
    /// ``BackgroundUpdater``'s defaults.
    @Test func followDefaultsToTheBackgroundUpdatersTiming() throws {
        let help = try ToolRunner.run(["follow", "--help"])
        #expect(help.status == 0, "\(help.errors)")
        let defaults = BackgroundUpdater.Configuration.init()
        for (option, duration) in [("--interval", defaults.interval), ("--maximum-backoff", defaults.maximumBackoff)] {
            let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            #expect(Self.help(of: option, in: help.lines).contains("(default: \(seconds))"), "\(option): \(help.lines)")
        }
        #expect(BackgroundUpdater.Configuration.defaultMaximumBackoff == defaults.maximumBackoff)
        #expect(BackgroundUpdater.Configuration.defaultInterval == defaults.interval)
    }

    /// The usage line(s) of a help text, joined by single spaces.
    private static func usage(of lines: [String]) -> String {
        guard let start = lines.firstIndex(where: { $0.hasPrefix("USAGE:") }) else { return "" }
        let block = lines[start...].prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return block.joined(separator: " ").split(whereSeparator: \.isWhitespace).joined(separator: " ") + " "
    }

    /// The help of `option` in the OPTIONS section: its line and the lines
    /// that continue it.
    private static func help(of option: String, in lines: [String]) -> String {
        guard let section = lines.firstIndex(where: { $0.hasPrefix("OPTIONS:") }),
            let start = lines[section...].firstIndex(where: {
                let trimmed = $0.trimmingCharacters(in: .whitespaces)
                return trimmed.hasPrefix(option + " ") || trimmed == option
            })
        else { return "" }
        var text = lines[start]
        for line in lines[(start + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("-") || trimmed.hasPrefix("<") { break }
            text += " " + trimmed
        }
        return text
    }
}
