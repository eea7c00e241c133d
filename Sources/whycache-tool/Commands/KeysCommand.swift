import ArgumentParser
import WhyCache

/// `whycache-tool keys [--prefix P] --state PATH [--hex]`
struct KeysCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Print the keys of the state file in order, one per line, at one point in time.")

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    func execute() async throws {
        let output = BufferedOutput()
        try state.forEachEntry(under: prefix, text: text) { key, _ in
            try output.write(text.text(key))
            try output.write("\n")
        }
        try output.flush()
    }
}
