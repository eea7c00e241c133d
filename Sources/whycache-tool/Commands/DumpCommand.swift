import ArgumentParser
import WhyCache

/// `whycache-tool dump [--prefix P] --state PATH [--hex]`
struct DumpCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the entries of the state file in key order as JSON lines {\"key\": …, \"value\": …}, at one point in time.")

    @OptionGroup var state: StateOptions
    @OptionGroup var unusedLog: UnusedLogOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    func execute() async throws {
        let output = BufferedOutput()
        var lossy = false
        try state.forEachEntry(under: prefix, text: text) { key, value in
            if !text.hex && !(Self.isUTF8(key) && Self.isUTF8(value)) { lossy = true }
            try output.write("{\"key\": \(JSONText.quoted(text.text(key))), \"value\": \(JSONText.quoted(text.text(value)))}\n")
        }
        try output.flush()
        if lossy {
            ToolOutput.error("some keys or values are not UTF-8 text and were printed with U+FFFD in place of their bad bytes; use --hex")
        }
    }

    private static func isUTF8(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }
}
