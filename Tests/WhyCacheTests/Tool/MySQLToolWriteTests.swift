import Foundation
import Testing
import WhyCache
import WhyCacheMySQL

/// `set`, `delete` and `set --from-json` without `--state` on a `mysql://`
/// log, run as separate processes against the test server: the records go
/// straight into the log's table, and a host's `update` applies them.
@Suite struct MySQLToolWriteTests {
    /// The `--store` URL of `table` on the test server (without a password).
    private func storeURL(table: String) throws -> String {
        let host = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_HOST")
        let port = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PORT")
        let user = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_USER")
        let database = try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_DATABASE")
        return "mysql://\(user)@\(host):\(port)/\(database)?table=\(table)&connect-timeout=30"
    }

    @Test func writesWithoutAStateFileGoStraightToTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ["WHYCACHE_MYSQL_PASSWORD": try MySQLTestServer.variable("WHYCACHE_TEST_MYSQL_PASSWORD")]
            let table = MySQLTestServer.uniqueTableName()
            let store = ["--store", try storeURL(table: table)]
            func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, lines: [String], errors: String) {
                try ToolRunner.run(arguments, environment: environment, input: input)
            }
            #expect(try run(["init-store"] + store).status == 0)

            let set = try run(["set", "greeting", "hello"] + store)
            #expect(set.status == 0, "\(set.errors)")
            let large = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
            let largePath = directory + "/large.bin"
            try Data(large).write(to: URL(fileURLWithPath: largePath))
            let setFile = try run(["set", "blob", "--value-file", largePath] + store)
            #expect(setFile.status == 0, "\(setFile.errors)")
            let input = directory + "/changes.jsonl"
            let lines = (0..<500).map { #"{"key": "k\#($0)", "value": "v\#($0)"}"# } + [#"{"key": "greeting", "delete": true}"#]
            try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let many = try run(["set", "--from-json", "-"] + store, input: input)
            #expect(many.status == 0, "\(many.errors)")
            let delete = try run(["delete", "k0", "k1"] + store)
            #expect(delete.status == 0, "\(delete.errors)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["changes.jsonl", "large.bin"])

            let library = try MySQLDatastore(configuration: try MySQLTestServer.configuration(table: table))
            let latest = try await library.latestUpdateID()
            await library.close()
            #expect(delete.lines == [String(latest)])
            let ids = [set, setFile, many, delete].compactMap { $0.lines.first.flatMap(UInt64.init) }
            #expect(ids.count == 4 && ids == ids.sorted() && Set(ids).count == 4, "\(ids)")

            let host = directory + "/host"
            let update = try run(["update", "--state", host] + store)
            #expect(update.status == 0, "\(update.errors)")
            #expect(update.lines == [String(latest)], "stderr: \(update.errors)")
            var options = SharedStateFile.Options()
            options.createIfMissing = false
            let file = try SharedStateFile.open(at: host, options: options)
            #expect(try file.value(forKey: bytes("blob")) == large)
            #expect(try file.value(forKey: bytes("greeting")) == nil)
            #expect(try file.value(forKey: bytes("k0")) == nil)
            #expect(try file.value(forKey: bytes("k499")) == bytes("v499"))
            #expect(try file.statistics().keyCount == 1 + 498)
        }
    }
}
