import ArgumentParser
import WhyCache

/// `--prefix P` (repeatable): the key prefixes a state file subscribes to,
/// for the commands that may create one (`update`, `follow`, `verify`,
/// `restore`, and `set` and `delete` with `--state`).
///
/// A new state file is created with these prefixes and keeps only the keys
/// under them. An existing file must have the same ones (else exit status
/// 3); without `--prefix`, a command uses the file's own prefixes, so that
/// operators name them once, when the file is made.
struct SubscriptionOptions: ParsableArguments {
    @Option(name: .customLong("prefix"), help: ArgumentHelp(
        "Subscribe a new state file to the keys that start with this prefix (repeatable; UTF-8 text, or hex with --hex). "
            + "An existing state file must have the same prefixes; without --prefix it keeps its own.",
        valueName: "prefix"))
    var prefixes: [String] = []

    /// The prefixes given on the command line, as bytes, or nil when none were.
    ///
    /// - Throws: ``ToolUsageError`` for bad hex text.
    func requested(_ text: TextOptions) throws -> [[UInt8]]? {
        prefixes.isEmpty ? nil : try prefixes.map { try text.bytes($0, naming: "prefix") }
    }

    /// The configuration of a cache on `statePath`: subscribed to the
    /// prefixes given, else to those of the state file already there (none
    /// when there is no usable file: the cache then creates one, or reports
    /// why it cannot open it).
    func cacheConfiguration(statePath: String, text: TextOptions) throws -> SharedCache.Configuration {
        var configuration = SharedCache.Configuration()
        if let requested = try requested(text) {
            configuration.stateFileOptions.subscribedPrefixes = requested
        } else {
            var existing = SharedStateFile.Options()
            existing.createIfMissing = false
            configuration.stateFileOptions.subscribedPrefixes =
                (try? SharedStateFile.open(at: statePath, options: existing))?.subscribedPrefixes ?? []
        }
        return configuration
    }
}
