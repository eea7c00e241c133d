import Foundation
import Testing
import WhyCache
import WhyCacheMySQL
import WhyCacheTestSupport

/// The MariaDB server the tests use: the private server that `scripts/test.sh`
/// starts and describes in `WHYCACHE_TEST_MYSQL_*` variables.
///
/// A MySQL test never skips: without the variables it fails and says how to
/// run it, so a run that could not reach a server is never counted as passing.
enum MySQLTestServer {
    /// An environment variable the test command sets.
    static func variable(_ name: String) throws -> String {
        try MySQLConfiguration.testVariable(name)
    }

    /// A configuration for the test server and a table name no other test uses.
    static func configuration(table: String = uniqueTableName()) throws -> MySQLConfiguration {
        try MySQLConfiguration.testServer(table: table)
    }

    /// A fresh datastore on a table of its own, with its tables created.
    static func makeStore(configure: (inout MySQLConfiguration) -> Void = { _ in }) async throws -> MySQLDatastore {
        var configuration = try configuration()
        configure(&configuration)
        let store = try MySQLDatastore(configuration: configuration)
        try await store.createIfMissing()
        return store
    }

    /// `t_` and 24 random hex digits.
    static func uniqueTableName() -> String {
        "t_" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Runs SQL through the `mariadb` client as the test user (for checks
    /// that look at the tables directly).
    static func sql(_ statement: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "mariadb", "--no-defaults", "-h", try variable("WHYCACHE_TEST_MYSQL_HOST"), "-P", try variable("WHYCACHE_TEST_MYSQL_PORT"),
            "-u", try variable("WHYCACHE_TEST_MYSQL_USER"), "--batch", "--skip-column-names", try variable("WHYCACHE_TEST_MYSQL_DATABASE"),
            "-e", statement,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["MYSQL_PWD"] = try variable("WHYCACHE_TEST_MYSQL_PASSWORD")
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw MySQLTestFailure(description: "mariadb -e '\(statement)' failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A check in MySQL test support failed.
struct MySQLTestFailure: Error, CustomStringConvertible {
    let description: String
}

/// The ``DatastoreError`` that `body` throws, or `nil` (recorded as an issue)
/// when it throws nothing or something else.
func caughtDatastoreError(_ body: () async throws -> Void) async -> DatastoreError? {
    do {
        try await body()
        Issue.record("expected a DatastoreError, but nothing was thrown")
    } catch let error as DatastoreError {
        return error
    } catch let error as CacheError {
        if case .datastore(let cause) = error { return cause }
        Issue.record("expected a DatastoreError, got \(error)")
    } catch {
        Issue.record("expected a DatastoreError, got \(error)")
    }
    return nil
}
