import ArgumentParser
import WhyCache

/// `--state PATH` (required): the shared-state file of a command that
/// reads it or keeps it current.
///
/// A missing or empty `--state` is a usage error (exit status 2).
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Required. The shared-state file.", valueName: "path"))
    var state: String

    /// Refuses an empty `--state`.
    func validate() throws {
        guard !state.isEmpty else { throw ValidationError("--state needs a path") }
    }

    /// Opens the existing state file for reading (never creating one).
    ///
    /// - Throws: ``StateFileError`` when the file is missing or unusable.
    func openStateFile() throws(StateFileError) -> SharedStateFile {
        try StoreOptions.openStateFile(at: state)
    }

    /// Calls `body` with every entry of the state file in key order, at one
    /// point in time, under `prefix` (text, or hex with `--hex`) if given.
    ///
    /// - Throws: ``ToolUsageError`` for a prefix no key can start with;
    ///   ``StateFileError`` from the file; whatever `body` throws.
    func forEachEntry(under prefix: String?, text: TextOptions, _ body: ([UInt8], [UInt8]) throws -> Void) throws {
        let prefixBytes = try prefix.map { try text.bytes($0, naming: "prefix") }
        if let prefixBytes, prefixBytes.count > WhyCacheLimits.maximumKeyLength {
            // No key can start with it: say so instead of printing nothing.
            throw ToolUsageError("the prefix has \(prefixBytes.count) bytes; keys have at most \(WhyCacheLimits.maximumKeyLength)")
        }
        let range: KeyRange = prefixBytes.map { .prefix($0) } ?? .all
        let view = try openStateFile().snapshot()
        defer { view.close() }
        var cursor = view.makeCursor(in: range)
        while let (key, value) = try cursor.next() {
            try body(key, value)
        }
    }
}

/// `--state PATH` for `set` and `delete`, which write to the log with or
/// without a state file.
///
/// With it, the command applies the log to the state file before it
/// returns (read-your-writes on this host); without it, the write is only
/// in the log, and every host sees it at its next update.
struct OptionalStateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Also apply the write to this shared-state file (created if missing) before returning. "
            + "Without it the write is only in the log: hosts see it at their next update.",
        valueName: "path"))
    var state: String?

    /// Refuses an empty `--state`.
    func validate() throws {
        if let state, state.isEmpty { throw ValidationError("--state needs a path") }
    }

    /// Refuses `--prefix` without `--state`: prefixes describe the state
    /// file, and a write to the log alone has none.
    func checkPrefixes(_ subscription: SubscriptionOptions) throws(ValidationError) {
        guard state != nil || subscription.prefixes.isEmpty else {
            throw ValidationError("--prefix names the keys a state file keeps: it needs --state")
        }
    }

    /// The state file to write through and the configuration of a cache on
    /// it (``SubscriptionOptions/cacheConfiguration(statePath:text:)``), or
    /// nil without `--state`.
    func cache(_ subscription: SubscriptionOptions, text: TextOptions) throws -> (path: String, configuration: SharedCache.Configuration)? {
        guard let state else { return nil }
        return (state, try subscription.cacheConfiguration(statePath: state, text: text))
    }
}

/// `--state` for a command that does not use a state file (`init-store`,
/// `rewrite-history`): accepted, so that a script may pass the same
/// options to every command, and ignored. Left out of the command's help.
struct UnusedStateOptions: ParsableArguments {
    @Option(name: .long, help: .hidden)
    var state: String?
}
