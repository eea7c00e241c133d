import ArgumentParser
import WhyCache

/// `whycache-tool set KEY VALUE|--value-file PATH|- --store URL [--state PATH [--prefix P]…] [--hex]`,
/// or `set --from-json PATH|- …` for many keys at once.
///
/// Without `--state` the write goes straight to the log (a deploy or CI
/// host keeps no cache); with it, the state file holds the write when the
/// command returns. A key outside the prefixes of a subscribed state file
/// is written to the log, but that state file does not keep it.
struct SetCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set KEY to VALUE (or the keys of --from-json) in the log; print the update id of the last record written.",
        discussion: """
            Without --state the write goes to the log only (no state file is opened or created): every host sees it \
            at its next update. With --state, that state file holds the write (or something newer) when the command \
            returns.

            VALUE is taken literally (- and @file too); --value-file reads the value from a file or stdin, byte for \
            byte (a final line break included, --hex or not), up to 64 MiB.

            --from-json reads JSON lines, one key per line, in the form dump prints: {"key": K, "value": V} sets K, \
            {"key": K, "delete": true} deletes it. K and V are UTF-8 text, or hex with --hex; so `dump | set \
            --from-json -` copies text data and `dump --hex | set --from-json - --hex` copies any bytes. Blank lines are \
            skipped; any other member, or a line that is not such an object, is a usage error (exit status 2) naming \
            the line, and nothing is written: the whole input is read and checked first. The keys are written in \
            order (a key given twice: the later line wins) as one log record when they fit in one (1 MiB), which \
            readers see all at once, else as consecutive records of one append.
            """)

    @OptionGroup var log: LogOptions
    @OptionGroup var state: OptionalStateOptions
    @OptionGroup var subscription: SubscriptionOptions
    @OptionGroup var text: TextOptions

    @Argument(help: "The key (UTF-8 text, or hex with --hex).")
    var key: String?

    @Argument(help: "The value (UTF-8 text, or hex with --hex); or give --value-file.")
    var value: String?

    @Option(name: .long, help: ArgumentHelp("Read the value from this file, or stdin for -, byte for byte.", valueName: "path|-"))
    var valueFile: String?

    @Option(name: .customLong("from-json"), help: ArgumentHelp(
        "Set or delete the keys of these JSON lines (a file, or stdin for -) instead of KEY.", valueName: "path|-"))
    var fromJSON: String?

    func validate() throws {
        if fromJSON != nil {
            guard key == nil, value == nil, valueFile == nil else {
                throw ValidationError("--from-json takes no KEY, VALUE or --value-file: the keys come from its lines")
            }
        } else {
            guard key != nil else { throw ValidationError("name a KEY and a VALUE, a KEY and --value-file, or --from-json PATH") }
            guard (value == nil) != (valueFile == nil) else {
                throw ValidationError(value == nil ? "give the KEY a VALUE or --value-file" : "give either a VALUE or --value-file, not both")
            }
        }
        try state.checkPrefixes(subscription)
    }

    func execute() async throws {
        var write = LogWrite()
        if let fromJSON {
            try JSONWriteInput.read(fromJSON, text: text, into: &write)
        } else if let key {
            let keyBytes = try text.bytes(key, naming: "key")
            let valueBytes = try valueFile.map(Self.readValue) ?? text.bytes(value ?? "", naming: "value")
            try write.append(.set(key: keyBytes, value: valueBytes), context: nil)
        }
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
