import Foundation
import WhyCache
import WhyCacheMySQL

/// A log to open: the datastore a `--store` URL names, and where the MySQL
/// password comes from.
///
/// The password comes from `--password-file` or the environment variable
/// ``passwordVariable``, never from the URL or a flag value: command lines
/// are visible to every user through `ps`.
struct LogConnection {
    /// The environment variable read when no `--password-file` is given.
    static let passwordVariable = "WHYCACHE_MYSQL_PASSWORD"

    /// The parsed `--store`.
    var store: StoreURL

    /// `--password-file`, if given.
    var passwordFile: String?

    /// Runs `body` with the datastore of ``store``, closed afterwards.
    ///
    /// - Parameter creating: Whether the log may be created (`init-store`);
    ///   otherwise a file log must exist already.
    func withDatastore<T>(
        creating: Bool = false, defaultTable: String = StoreURL.defaultTable, _ body: (any Datastore) async throws -> T
    ) async throws -> T {
        let datastore: any Datastore
        var mysql: MySQLDatastore?
        switch store {
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

    /// Runs `body` with a cache on the state file at `statePath` (created if
    /// missing) with `configuration`, and the datastore of ``store``, both
    /// closed afterwards.
    func withCache<T>(
        statePath: String, configuration: SharedCache.Configuration, _ body: (SharedCache) async throws -> T
    ) async throws -> T {
        try await withDatastore { datastore in
            let cache = try SharedCache(statePath: statePath, datastore: datastore, configuration: configuration)
            defer { cache.close() }
            return try await body(cache)
        }
    }

    /// The MySQL password: the contents of ``passwordFile``, else the
    /// environment variable, else empty.
    ///
    /// - Throws: ``ToolUsageError`` for an empty password file,
    ///   ``DatastoreError/ioFailure(operation:path:errno:)`` when it cannot be read.
    func password() throws -> String {
        try Self.password(file: passwordFile)
    }

    /// The MySQL password: the contents of `file` (one trailing line break
    /// dropped), else the environment variable, else empty.
    ///
    /// - Throws: as ``password()``.
    static func password(file: String?) throws -> String {
        guard let file else {
            return ProcessInfo.processInfo.environment[passwordVariable] ?? ""
        }
        var text = String(decoding: try FileContents.read(file, purpose: "the password file"), as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        if text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw ToolUsageError("the password file \(file) is empty") }
        return text
    }
}
