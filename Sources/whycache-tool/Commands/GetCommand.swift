import ArgumentParser
import WhyCache

/// `whycache-tool get KEY --state PATH [--hex]`
struct GetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print the value of KEY in the state file (exit 1 when it has none). Reads only the local state; see update.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String

    func execute() async throws {
        let keyBytes = try text.bytes(key, naming: "key")
        let file = try storeOptions.openStateFile()
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

/// `whycache-tool keys [--prefix P] --state PATH [--hex]`
struct KeysCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Print the keys of the state file in order, one per line, at one point in time.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    func execute() async throws {
        let range: KeyRange = try prefix.map { .prefix(try text.bytes($0, naming: "prefix")) } ?? .all
        let view = try storeOptions.openStateFile().snapshot()
        defer { view.close() }
        let output = BufferedOutput()
        var cursor = view.makeCursor(in: range)
        while let (key, _) = try cursor.next() {
            try output.write(text.text(key))
            try output.write("\n")
        }
        try output.flush()
    }
}

/// `whycache-tool dump [--prefix P] --state PATH [--hex]`
struct DumpCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the entries of the state file in key order as JSON lines {\"key\": …, \"value\": …}, at one point in time.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var text: TextOptions

    @Option(name: .long, help: "Only the keys that start with this prefix.")
    var prefix: String?

    func execute() async throws {
        let range: KeyRange = try prefix.map { .prefix(try text.bytes($0, naming: "prefix")) } ?? .all
        let view = try storeOptions.openStateFile().snapshot()
        defer { view.close() }
        let output = BufferedOutput()
        var cursor = view.makeCursor(in: range)
        var lossy = false
        while let (key, value) = try cursor.next() {
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
