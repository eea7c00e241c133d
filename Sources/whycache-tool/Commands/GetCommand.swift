import ArgumentParser
import WhyCache

/// `whycache-tool get KEY --state PATH [--hex]`
///
/// Prints the value's bytes and a line break (its hex with `--hex`).
struct GetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print the value of KEY in the state file (exit 1 when it has none). Reads only the local state; see update.")

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String

    func execute() async throws {
        let keyBytes = try text.bytes(key, naming: "key")
        let file = try state.openStateFile()
        guard let value = try file.value(forKey: keyBytes) else {
            ToolOutput.error("no value for the key \(key) in \(file.path) (at update \(try file.updateID()))")
            throw ExitCode(ToolExitStatus.negative)
        }
        let output = BufferedOutput()
        try output.write(text.hex ? Array(Hex.encode(value).utf8) : value)
        try output.write("\n")
        try output.flush()
    }
}
