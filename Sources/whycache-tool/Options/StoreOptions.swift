import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// `--store`, `--password-file` and `--state`: which log and which
/// shared-state file a command works on.
///
/// Each command says which of them it needs (``requireStore()``,
/// ``requireState()``); a missing one is a usage error (exit status 2).
/// The MySQL password comes from `--password-file` or the environment
/// variable `WHYCACHE_MYSQL_PASSWORD`, never from the URL or a flag value:
/// command lines are visible to every user through `ps`.
struct StoreOptions: ParsableArguments {
    /// The environment variable read when no `--password-file` is given.
    static let passwordVariable = "WHYCACHE_MYSQL_PASSWORD"

    @Option(name: .long, help: ArgumentHelp(
        "The log: file:///absolute/dir or mysql://USER@HOST[:PORT]/DATABASE?table=NAME (also tls=, tls-ca=, socket=).",
        valueName: "url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the MySQL password (a trailing line break is ignored); default: $\(passwordVariable).",
        valueName: "path"))
    var passwordFile: String?

    @Option(name: .long, help: ArgumentHelp("The shared-state file.", valueName: "path"))
    var state: String?

    /// Refuses a malformed `--store` before any command runs, also in
    /// commands that do not use it, so that a URL with a password is never
    /// accepted anywhere (the message does not repeat the password).
    func validate() throws {
        if let store {
            do { _ = try StoreURL(parsing: store) } catch { throw ValidationError(error.description) }
        }
    }

    /// The parsed `--store`.
    ///
    /// - Throws: ``ToolUsageError`` when it is missing, ``StoreURLError`` when it is malformed.
    func requireStore() throws -> StoreURL {
        guard let store else { throw ToolUsageError("this command needs --store URL") }
        return try StoreURL(parsing: store)
    }

    /// `--state`.
    ///
    /// - Throws: ``ToolUsageError`` when it is missing.
    func requireState() throws -> String {
        guard let state, !state.isEmpty else { throw ToolUsageError("this command needs --state PATH") }
        return state
    }

    /// Runs `body` with the datastore of `--store`, closed afterwards.
    ///
    /// - Parameter creating: Whether the log may be created (`init-store`);
    ///   otherwise a file log must exist already.
    func withDatastore<T>(
        creating: Bool = false, defaultTable: String = StoreURL.defaultTable, _ body: (any Datastore) async throws -> T
    ) async throws -> T {
        let datastore: any Datastore
        var mysql: MySQLDatastore?
        switch try requireStore() {
        case .file(let directory):
            datastore = creating ? try FileDatastore(directory: directory) : try await FileDatastore.open(directory: directory)
        case .mysql(let address):
            let store = try MySQLDatastore(configuration: try address.configuration(password: try password(), defaultTable: defaultTable))
            mysql = store
            datastore = store
        }
        do {
            let result = try await body(datastore)
            await mysql?.close()
            return result
        } catch {
            await mysql?.close()
            throw error
        }
    }

    /// Runs `body` with a cache on `--state` (created if missing, with the
    /// prefixes of `subscription`) and the datastore of `--store`, both
    /// closed afterwards.
    func withCache<T>(
        _ subscription: SubscriptionOptions, text: TextOptions, _ body: (SharedCache) async throws -> T
    ) async throws -> T {
        let path = try requireState()
        let configuration = try subscription.cacheConfiguration(statePath: path, text: text)
        return try await withDatastore { datastore in
            let cache = try SharedCache(statePath: path, datastore: datastore, configuration: configuration)
            defer { cache.close() }
            return try await body(cache)
        }
    }

    /// Opens the existing state file `--state` for reading.
    ///
    /// - Throws: ``ToolUsageError`` when `--state` is missing,
    ///   ``StateFileError`` when the file is missing or unusable.
    func openStateFile() throws -> SharedStateFile {
        try Self.openStateFile(at: try requireState())
    }

    /// Opens the existing state file at `path` for reading, as the commands
    /// that read `--state` do (never creating one).
    ///
    /// - Throws: ``StateFileError`` when the file is missing or unusable.
    static func openStateFile(at path: String) throws(StateFileError) -> SharedStateFile {
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        return try SharedStateFile.open(at: path, options: options)
    }

    /// Calls `body` with every entry of `--state` in key order, at one
    /// point in time, under `prefix` (text, or hex with `--hex`) if given.
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

    /// The MySQL password: the contents of `--password-file`, else the
    /// environment variable, else empty.
    ///
    /// - Throws: ``ToolUsageError`` for an empty password file,
    ///   ``DatastoreError/ioFailure(operation:path:errno:)`` when it cannot be read.
    func password() throws -> String {
        guard let passwordFile else {
            return ProcessInfo.processInfo.environment[Self.passwordVariable] ?? ""
        }
        var text = String(decoding: try FileContents.read(passwordFile, purpose: "the password file"), as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        if text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw ToolUsageError("the password file \(passwordFile) is empty") }
        return text
    }
}

/// Reading a whole small file with `read(2)`, with typed errors.
enum FileContents {
    /// The bytes of the file at `path`; `purpose` names it in errors.
    static func read(_ path: String, purpose: String) throws(DatastoreError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .ioFailure(operation: "open \(purpose)", path: path, errno: errno) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw .ioFailure(operation: "read \(purpose)", path: path, errno: errno)
            }
            bytes += chunk[0..<count]
        }
    }
}
