import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// `whycache-tool` with a `mysql://` store, run as a separate process against
/// the test server; the password never appears in any output.
@Suite struct MySQLToolTests {
    private static let tool = HelperProcess.builtExecutable("whycache-tool")

    /// Runs the tool with `environment`; returns its exit status, stdout lines and stderr.
    private func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, lines: [String], errors: String) {
        try HelperProcess(arguments, executable: Self.tool, environment: environment).finish()
    }

    /// The `--store` URL of `table` on the test server (without a password).
    private func storeURL(table: String) throws -> String {
        let host = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST")
        let port = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT")
        let user = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_USER")
        let database = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_DATABASE")
        return "mysql://\(user)@\(host):\(port)/\(database)?table=\(table)&connect-timeout=30"
    }

    /// `init-store --print-sql` prints exactly the committed `Schema/whycache_log.sql`, with no server.
    @Test func printSQLPrintsTheCommittedScript() throws {
        let result = try run(["init-store", "--store", "mysql://nobody@unreachable.invalid/db", "--print-sql"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.lines.joined(separator: "\n") + "\n" == MySQLDatastore.schemaScript(table: try MySQLIdentifier("whycache_log")))
    }

    /// `init-store` creates tables the library can use; `set`, `get`, `update`
    /// and `stat` work through them with the password from a file or from
    /// the environment; a wrong password is exit status 3 with a clear
    /// message; a URL with a password is refused (status 2). No output of
    /// any of these holds a password.
    @Test func operatesAMySQLLogWithoutShowingThePassword() async throws {
        try await withTemporaryDirectory { directory in
            let password = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PASSWORD")
            let passwordFile = directory + "/password"
            try (password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let table = MySQLTestServer.uniqueTableName()
            let store = try storeURL(table: table)
            var outputs: [String] = []
            func checked(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, lines: [String], errors: String) {
                let result = try run(arguments, environment: environment)
                outputs.append(result.lines.joined(separator: "\n") + result.errors)
                return result
            }

            let created = try checked(["init-store", "--store", store, "--password-file", passwordFile])
            #expect(created.status == 0, "\(created.errors)")
            let again = try checked(["init-store", "--store", store], environment: ["WHYCACHE_MYSQL_PASSWORD": password])
            #expect(again.status == 0, "\(again.errors)")
            #expect(again.lines.first?.contains("already existed") == true, "\(again.lines)")

            let set = try checked(["set", "greeting", "hello", "--store", store, "--password-file", passwordFile, "--state", directory + "/a.state"])
            #expect(set.status == 0, "\(set.errors)")
            let library = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
            #expect(set.lines == [String(try await library.latestUpdateID())])
            let update = try checked(["update", "--store", store, "--state", directory + "/b.state"], environment: ["WHYCACHE_MYSQL_PASSWORD": password])
            #expect(update.status == 0, "\(update.errors)")
            #expect(update.lines == set.lines)
            let get = try checked(["get", "greeting", "--state", directory + "/b.state"])
            #expect(get.lines == ["hello"])
            let stat = try checked(["stat", "--json", "--store", store, "--password-file", passwordFile, "--state", directory + "/b.state"])
            #expect(stat.status == 0, "\(stat.errors)")
            let object = try JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any]
            #expect(object?["lag"] as? Int == 0, "\(stat.lines)")

            let wrong = directory + "/wrong"
            try "not-the-password-5521".write(toFile: wrong, atomically: true, encoding: .utf8)
            let denied = try checked(["stat", "--store", store, "--password-file", wrong])
            #expect(denied.status == 3)
            #expect(denied.errors.contains("access denied"), "\(denied.errors)")
            #expect(!denied.errors.contains("not-the-password-5521"))
            let deniedByEnvironment = try checked(["set", "k", "v", "--store", store, "--state", directory + "/a.state"],
                                                  environment: ["WHYCACHE_MYSQL_PASSWORD": "not-the-password-5521"])
            #expect(deniedByEnvironment.status == 3)
            #expect(!deniedByEnvironment.errors.contains("not-the-password-5521"))

            let user = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_USER")
            let inURL = try checked(["stat", "--store", store.replacingOccurrences(of: "\(user)@", with: "\(user):\(password)@")])
            #expect(inURL.status == 2)
            #expect(inURL.errors.contains("must not hold a password"), "\(inURL.errors)")
            let inURLToo = try checked(["get", "k", "--state", directory + "/a.state", "--store", "mysql://\(user):\(password)@h/db"])
            #expect(inURLToo.status == 2)

            for output in outputs {
                #expect(!output.contains(password), "the password appeared in \(output)")
            }
        }
    }

    /// A URL with `replica=` items reads the log through those replicas:
    /// `update` applies what was written through the primary, and `stat`
    /// lists the replicas and which one served. Bad replica items are usage
    /// errors (status 2).
    @Test func readsTheLogThroughTheReplicasTheURLNames() async throws {
        try await withTemporaryDirectory { directory in
            let password = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PASSWORD")
            let environment = ["WHYCACHE_MYSQL_PASSWORD": password]
            let table = MySQLTestServer.uniqueTableName()
            let primaryURL = try storeURL(table: table)
            let replicaPorts = try MySQLTestReplicas.servers().map(\.port)
            let replicaURL = primaryURL + replicaPorts.map { "&replica=127.0.0.1:\($0)" }.joined() + "&replica-lag=5"
            #expect(try run(["init-store", "--store", primaryURL], environment: environment).status == 0)
            let set = try run(["set", "greeting", "hello", "--store", primaryURL, "--state", directory + "/a.state"], environment: environment)
            #expect(set.status == 0, "\(set.errors)")
            let primary = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
            try await MySQLTestReplicas.waitUntilCaughtUp(table: table, primary: primary)

            let update = try run(["update", "--store", replicaURL, "--state", directory + "/b.state"], environment: environment)
            #expect(update.status == 0, "\(update.errors)")
            #expect(update.lines == set.lines)
            #expect(try run(["get", "greeting", "--state", directory + "/b.state"]).lines == ["hello"])
            let stat = try run(["stat", "--json", "--store", replicaURL], environment: environment)
            #expect(stat.status == 0, "\(stat.errors)")
            let object = try JSONSerialization.jsonObject(with: Data(stat.lines.joined().utf8)) as? [String: Any]
            let replicas = (object?["log"] as? [String: Any])?["replicas"] as? [[String: Any]] ?? []
            #expect(Set(replicas.compactMap { $0["endpoint"] as? String }) == Set(replicaPorts.map { "127.0.0.1:\($0)" }), "\(stat.lines)")
            #expect(replicas.contains { $0["current"] as? Bool == true }, "\(stat.lines)")

            for bad in ["&replica=", "&replica=host:0", "&replica-lag=-1", "&replica-lag=soon"] {
                let refused = try run(["stat", "--store", primaryURL + bad], environment: environment)
                #expect(refused.status == 2, "\(bad): \(refused.errors)")
            }
        }
    }
}
