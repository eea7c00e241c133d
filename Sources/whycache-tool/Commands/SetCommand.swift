import ArgumentParser
import WhyCache

/// `whycache-tool set KEY VALUE|--value-file PATH|- --store URL [--state PATH [--prefix P]…] [--hex]`
///
/// Without `--state` the write goes straight to the log (a deploy or CI
/// host keeps no cache); with it, the state file holds the write when the
/// command returns. A key outside the prefixes of a subscribed state file
/// is written to the log, but that state file does not keep it.
struct SetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set KEY to VALUE in the log; print the update id of the record written.",
        discussion: """
            Without --state the write goes to the log only (no state file is opened or created): every host sees it \
            at its next update. With --state, that state file holds the write (or something newer) when the command \
            returns.

            VALUE is taken literally (- and @file too); --value-file reads the value from a file or stdin, byte for \
            byte (a final line break included, --hex or not), up to 64 MiB.
            """)

    @OptionGroup var log: LogOptions
    @OptionGroup var state: OptionalStateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String

    @Argument(help: "The value (UTF-8 text, or hex with --hex); or give --value-file.")
    var value: String?

    @Option(name: .long, help: ArgumentHelp("Read the value from this file, or stdin for -, byte for byte.", valueName: "path|-"))
    var valueFile: String?

    func validate() throws {
        guard (value == nil) != (valueFile == nil) else {
            throw ValidationError(value == nil ? "give the KEY a VALUE or --value-file" : "give either a VALUE or --value-file, not both")
        }
        try state.checkPrefixes(subscription)
    }

    func execute() async throws {
        var write = LogWrite()
        let keyBytes = try text.bytes(key, naming: "key")
        let valueBytes = try valueFile.map(Self.readValue) ?? text.bytes(value ?? "", naming: "value")
        try write.append(.set(key: keyBytes, value: valueBytes), context: nil)
        let updateID = try await write.write(to: try log.connection(), state: try state.cache(subscription, text: text))
        ToolOutput.line(String(updateID))
    }

    /// The bytes of the file at `path` (stdin for `-`), exactly.
    ///
    /// - Throws: ``ToolUsageError`` when it holds more than a value may;
    ///   ``DatastoreError/ioFailure(operation:path:errno:)`` when it cannot be read.
    private static func readValue(from path: String) throws -> [UInt8] {
        let file = try InputFile(path, purpose: "the value file")
        defer { file.close() }
        let bytes = try file.readAll(limit: WhyCacheLimits.maximumValueLength)
        guard bytes.count <= WhyCacheLimits.maximumValueLength else {
            throw ToolUsageError("--value-file \(path) holds more than \(WhyCacheLimits.maximumValueLength) bytes (64 MiB), the most a value may have")
        }
        return bytes
    }
}
