import Foundation
import WhyCacheMySQL

/// A variable of the test command (`WHYCACHE_TEST_MYSQL_*`) is not set, so
/// the private MariaDB server the MySQL tests use cannot be named.
public struct TestServerNotConfigured: Error, CustomStringConvertible {
    /// The missing variable.
    public let variable: String

    public var description: String {
        "\(variable) is not set: run the tests with `bash scripts/test.sh`, which starts a private MariaDB server and sets WHYCACHE_TEST_MYSQL_*"
    }
}

extension MySQLConfiguration {
    /// The value of the test command's environment variable `name`.
    ///
    /// - Throws: ``TestServerNotConfigured`` when it is not set or empty.
    public static func testVariable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw TestServerNotConfigured(variable: name)
        }
        return value
    }

    /// The test command's private MariaDB server (`WHYCACHE_TEST_MYSQL_HOST`,
    /// `_PORT`, `_USER`, `_PASSWORD`, `_DATABASE`), for the log table `table`,
    /// as the tests and their helper processes reach it.
    ///
    /// The connect timeout is 30 s, not the library's 5 s: while the whole
    /// suite runs on a 2-core machine, the server may answer a new
    /// connection's handshake seconds late (a burst of tests and helper
    /// processes opening their pools at once), and a test must not fail for
    /// that. What the tests check of timeouts, they set themselves.
    public static func testServer(table: String) throws -> MySQLConfiguration {
        guard let port = Int(try testVariable("WHYCACHE_TEST_MYSQL_PORT")) else {
            throw TestServerNotConfigured(variable: "WHYCACHE_TEST_MYSQL_PORT (a number)")
        }
        var configuration = MySQLConfiguration(
            endpoint: .tcp(host: try testVariable("WHYCACHE_TEST_MYSQL_HOST"), port: port),
            user: try testVariable("WHYCACHE_TEST_MYSQL_USER"),
            password: try testVariable("WHYCACHE_TEST_MYSQL_PASSWORD"),
            database: try testVariable("WHYCACHE_TEST_MYSQL_DATABASE"),
            table: try MySQLIdentifier(table))
        configuration.connectTimeout = .seconds(30)
        return configuration
    }
}
