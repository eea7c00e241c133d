import ArgumentParser
import WhyCache

/// `whycache-tool keys [--prefix P] [--json] --state PATH [--hex]`
struct KeysCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Print the keys of the state file in order, one per line, at one point in time.",
        discussion: """
            Each line is the key as text (or hex with --hex); with --json, a JSON object {"key": …} per line, as dump \
            prints it but without the value, so that keys holding line breaks stay one line each.
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    @Flag(name: .long, help: "Print JSON lines {\"key\": …} (bytes that are not UTF-8 are flagged on stderr; use --hex).")
    var json = false

    func execute() async throws {
        let output = BufferedOutput()
        var inexact = false
        try state.forEachEntry(under: prefix, text: text) { key, _ in
            if json {
                if !text.showsExactly(key) { inexact = true }
                try output.write("{\"key\": \(JSONText.quoted(text.text(key)))}\n")
            } else {
                try output.write(text.text(key))
                try output.write("\n")
            }
        }
        try output.flush()
        if inexact { ToolOutput.error(TextOptions.inexactWarning("keys")) }
    }
}
