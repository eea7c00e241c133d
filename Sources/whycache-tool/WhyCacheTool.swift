import ArgumentParser
import Foundation

/// `whycache-tool`: operate a WhyCache log and shared-state file from the shell.
///
/// The command names, options, output formats and exit statuses are a
/// contract with the scripts that run the tool (README "The tool"); see
/// ``ToolExitStatus``.
struct WhyCacheTool: AsyncParsableCommand {
    /// The version of the WhyCache package that this tool belongs to,
    /// printed by `whycache-tool --version`: the one place it is written.
    /// It follows semantic versioning; while it is 0.x, the library's API
    /// and the tool's contract may still change between minor versions
    /// (README, "The tool"). Raise it with each release.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "whycache-tool",
        abstract: "Operate a WhyCache log (--store URL) and shared-state file (--state PATH) from the shell.",
        discussion: """
            Exit status: 0 success, 1 not found or differs, 2 usage error, 3 datastore, state file or snapshot error. \
            The MySQL password comes from \(LogConnection.passwordVariable) or --password-file, never from the URL. \
            Each command's --help lists the options it uses; --store and --state are accepted (and ignored) by the \
            commands that do not use them, so that a script may pass both to every command.
            """,
        version: version,
        subcommands: [
            InitStoreCommand.self, SetCommand.self, DeleteCommand.self, GetCommand.self, KeysCommand.self,
            DumpCommand.self, StatCommand.self, UpdateCommand.self, FollowCommand.self, RewriteHistoryCommand.self, RewriteStateCommand.self,
            VerifyCommand.self, SnapshotCommand.self, RestoreCommand.self, DemoCommand.self, BenchCommand.self, DemoWorkerCommand.self,
        ]
    )
}

/// The entry point: runs the command, with usage errors ending in exit
/// status 2 (ArgumentParser's own default is 64).
@main
enum WhyCacheToolMain {
    static func main() async {
        if let bad = firstArgumentThatIsNotUTF8() {
            // Swift would repair it (each bad byte becoming U+FFFD), so two
            // different keys could name one key.
            FileHandle.standardError.write(Data((
                "whycache-tool: argument \(bad) is not valid UTF-8 text; give binary keys, values and prefixes in hexadecimal with --hex\n"
            ).utf8))
            exit(ToolExitStatus.usage)
        }
        do {
            var command = try WhyCacheTool.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if WhyCacheTool.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((WhyCacheTool.fullMessage(for: error) + "\n").utf8))
                exit(ToolExitStatus.usage)
            }
            WhyCacheTool.exit(withError: error)
        }
    }
}

/// The position (1 for the first argument after the program's name) of the
/// first command-line argument whose bytes are not valid UTF-8, if any.
/// Reads the raw `argv`: `CommandLine.arguments` has already replaced
/// invalid bytes.
func firstArgumentThatIsNotUTF8() -> Int? {
    for index in 1..<Int(CommandLine.argc) {
        guard let argument = CommandLine.unsafeArgv[index] else { continue }
        if String(validatingCString: argument) == nil { return index }
    }
    return nil
}
