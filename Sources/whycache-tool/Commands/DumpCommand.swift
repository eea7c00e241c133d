import ArgumentParser
import WhyCache

/// `whycache-tool dump [--prefix P] --state PATH [--hex]`
///
/// Its lines are the input format of `set --from-json` (``JSONWriteLine``).
struct DumpCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the entries of the state file in key order as JSON lines {\"key\": …, \"value\": …}, at one point in time.",
        discussion: """
            Keys and values are UTF-8 text (bytes that are not are printed as U+FFFD, with a warning on stderr), or hex \
            with --hex. set --from-json reads these lines back.
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    func execute() async throws {
        let output = BufferedOutput()
        var inexact = false
        try state.forEachEntry(under: prefix, text: text) { key, value in
            if !(text.showsExactly(key) && text.showsExactly(value)) { inexact = true }
            try output.write("{\"key\": \(JSONText.quoted(text.text(key))), \"value\": \(JSONText.quoted(text.text(value)))}\n")
        }
        try output.flush()
        if inexact { ToolOutput.error(TextOptions.inexactWarning("keys or values")) }
    }
}
