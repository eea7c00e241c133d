import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// `whycache-tool mysql …`, run as a separate process against the test server.
@Suite struct MySQLToolTests {
    private static let tool = HelperProcess.builtExecutable("whycache-tool")

    /// Runs the tool; returns its exit status, stdout lines and stderr.
    private func run(_ arguments: [String]) throws -> (status: Int32, lines: [String], errors: String) {
        try HelperProcess(arguments, executable: Self.tool).finish()
    }

    /// The connection options of the test server, with the password in a file.
    private func connectionOptions(table: String, passwordFile: String) throws -> [String] {
        [
            "--host", try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST"),
            "--port", try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT"),
            "--user", try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_USER"),
            "--database", try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_DATABASE"),
            "--table", table, "--password-file", passwordFile,
        ]
    }

    /// `mysql schema` prints exactly the committed `Schema/whycache_log.sql`.
    @Test func schemaPrintsTheCommittedScript() throws {
        let result = try run(["mysql", "schema"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.lines.joined(separator: "\n") + "\n" == MySQLDatastore.schemaScript(table: try MySQLIdentifier("whycache_log")))
    }

    /// `mysql create-schema` creates tables the library can use, `mysql stat`
    /// reports the log, and a wrong password is a clear error without the password.
    @Test func createSchemaAndStat() async throws {
        try await withTemporaryDirectory { directory in
            let passwordFile = directory + "/password"
            try (try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PASSWORD") + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let table = MySQLTestServer.uniqueTableName()
            let options = try connectionOptions(table: table, passwordFile: passwordFile)

            let created = try run(["mysql", "create-schema"] + options)
            #expect(created.status == 0, "\(created.errors)")
            let store = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
            let ids = try await store.append(contentsOf: [Array("a".utf8), Array("b".utf8), Array("c".utf8)])
            let stat = try run(["mysql", "stat"] + options)
            #expect(stat.status == 0, "\(stat.errors)")
            #expect(stat.lines.contains { $0.hasPrefix("latest update id:") && $0.hasSuffix(" \(ids[2])") }, "\(stat.lines)")

            let wrong = directory + "/wrong"
            try "not-the-password-5521".write(toFile: wrong, atomically: true, encoding: .utf8)
            let denied = try run(["mysql", "stat"] + (try connectionOptions(table: table, passwordFile: wrong)))
            #expect(denied.status != 0)
            #expect(denied.errors.contains("access denied"))
            #expect(!denied.errors.contains("not-the-password-5521"))
        }
    }
}
