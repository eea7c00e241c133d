import Foundation
import Logging
import ServiceLifecycle
import Testing
import WhyCache
import WhyCacheMySQL

/// The Swift snippets of `README.md` and of the DocC articles
/// (`Sources/*/*.docc`), all but `Package.swift`, compiled here: each sits
/// in a function that supplies what the snippet takes from the text around
/// it (a log, a secret, a server, …). The functions are compiled and never
/// run (they would write to `/var/lib` and `/dev/shm`);
/// ``DocumentationSnippetTests`` checks that every line of every snippet
/// appears here in order, so that neither can change alone.
enum ReadmeSnippets {
    static func gettingStarted() async throws {
        let log = try FileDatastore(directory: "/var/lib/myapp/log")     // the change log (MySQL in production)
        try await log.createIfMissing()
        let cache = try SharedCache(statePath: "/dev/shm/myapp.whycache", datastore: log)
        try await cache.update()                                          // catch up with the log

        let id = try await cache.set(Array("on".utf8), forKey: "flag/new-checkout".utf8)
        // When set returns, every process on this machine reads "on" (or something newer).

        let flag = try cache.value(forKey: "flag/new-checkout".utf8)      // lock-free read from shared memory: [UInt8]?
        try await cache.set(encoding: ["eu-west", "us-east"], forKey: "routing/regions".utf8)   // Codable values (JSON by default)
        let regions = try cache.value(decoding: [String].self, forKey: "routing/regions".utf8)

        let snapshot = try cache.snapshot()                               // one consistent point in time
        try snapshot.visitEntries(in: .prefix(Array("flag/".utf8))) { key, value in
            print(String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self))
            return true                                                   // keep going
        }
        snapshot.close()
        _ = (id, flag, regions)
    }

    static func mySQL(secret: String) throws -> (MySQLConfiguration, SharedCache) {
        var configuration = MySQLConfiguration(
            endpoint: .tcp(host: "db.internal", port: 3306), user: "whycache", password: secret,
            database: "app", table: try MySQLIdentifier("flags_log"))
        configuration.tls = .verifyServer(certificateAuthorityPath: "/etc/ssl/db-ca.pem")
        let log = try MySQLDatastore(configuration: configuration)
        let cache = try SharedCache(statePath: "/dev/shm/flags.whycache", datastore: log)
        return (configuration, cache)
    }

    static func replicas(_ configuration: inout MySQLConfiguration) {
        configuration.replicas = MySQLReplicaConfiguration(endpoints: [.tcp(host: "db-r1"), .tcp(host: "db-r2")])
        configuration.replicas.maximumLag = .seconds(2)       // leave a replica that falls further behind
    }

    static func keepingTheLogSmall(_ log: MySQLDatastore) async throws {
        let report = try await HistoryRewriter(datastore: log, scratchDirectory: "/var/tmp")
            .rewrite(keepingLast: 10_000)            // nil while the log is shorter; or: whycache-tool rewrite-history …
        _ = report
    }

    static func prefixSubscriptions(_ log: MySQLDatastore) throws -> SharedCache {
        var configuration = SharedCache.Configuration()
        configuration.stateFileOptions.subscribedPrefixes = [Array("flag/".utf8), Array("routing/".utf8)]
        let cache = try SharedCache(statePath: "/dev/shm/edge.whycache", datastore: log, configuration: configuration)
        return cache
    }

    static func inASwiftServer(cache: SharedCache, server: some Service, logger: Logger, id: UInt64) async throws {
        func invalidate(_ key: [UInt8]) {}
        func invalidateEverything() {}

        // Keep the cache current in the background, and stop cleanly on SIGTERM. The processes that
        // share the state file elect one of them to read the log; the others follow the shared file.
        let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .seconds(1)))
        let group = ServiceGroup(services: [updater, server], gracefulShutdownSignals: [.sigterm], logger: logger)

        // Read-your-writes across processes: another process wrote update `id`.
        try await updater.waitUntilApplied(through: id)

        // Invalidate derived data as changes are applied on this machine.
        for try await event in try cache.changes(matching: Array("user/".utf8)) {
            switch event {
            case .changed(let change): invalidate(change.key)      // change.value == nil: deleted
            case .historyRewritten: invalidateEverything()         // fell behind a history rewrite
            }
        }
        _ = group
    }
}

/// The DocC articles' snippets that differ from the README's.
enum ArticleSnippets {
    static func overview() async throws {
        let log = try FileDatastore(directory: "/var/lib/myapp/log")
        try await log.createIfMissing()
        let cache = try SharedCache(statePath: "/dev/shm/myapp.whycache", datastore: log)
        try await cache.set(Array("on".utf8), forKey: "flag/new-checkout".utf8)
        let flag = try cache.value(forKey: "flag/new-checkout".utf8)      // [UInt8]?
        _ = flag
    }

    static func gettingStarted() async throws {
        let log = try FileDatastore(directory: "/var/lib/myapp/log")
        try await log.createIfMissing()
        let cache = try SharedCache(statePath: "/dev/shm/myapp.whycache", datastore: log)
        try await cache.update()          // catch up with the log

        let id = try await cache.set(Array("on".utf8), forKey: "flag/new-checkout".utf8)
        let flag = try cache.value(forKey: "flag/new-checkout".utf8)                 // [UInt8]?
        try await cache.set(encoding: ["eu-west", "us-east"], forKey: "routing/regions".utf8)
        let regions = try cache.value(decoding: [String].self, forKey: "routing/regions".utf8)

        let snapshot = try cache.snapshot()
        try snapshot.visitEntries(in: .prefix(Array("flag/".utf8))) { key, value in
            print(String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self))
            return true          // keep going
        }
        snapshot.close()         // lets the writer reuse the space the snapshot kept
        _ = (id, flag, regions)
    }

    static func keepingTheLogShort(_ log: MySQLDatastore) async throws {
        let report = try await HistoryRewriter(datastore: log, scratchDirectory: "/var/tmp")
            .rewrite(keepingLast: 10_000)
        _ = report
    }

    static func runningInAServer(cache: SharedCache, server: some Service, logger: Logger, id: UInt64) async throws {
        func invalidate(_ key: [UInt8]) {}
        func invalidateEverything() {}

        let updater = BackgroundUpdater(cache: cache, configuration: .init(interval: .seconds(1)))
        let group = ServiceGroup(services: [updater, server], gracefulShutdownSignals: [.sigterm], logger: logger)
        try await group.run()

        try await updater.waitUntilApplied(through: id)

        for try await event in try cache.changes(matching: Array("user/".utf8)) {
            switch event {
            case .changed(let change): invalidate(change.key)       // change.value == nil: deleted
            case .historyRewritten: invalidateEverything()          // fell behind a history rewrite
            }
        }
    }

    static func theMySQLModule(secret: String) async throws {
        var configuration = MySQLConfiguration(
            endpoint: .tcp(host: "db.internal", port: 3306), user: "whycache", password: secret,
            database: "app", table: try MySQLIdentifier("flags_log"))
        configuration.tls = .verifyServer(certificateAuthorityPath: "/etc/ssl/db-ca.pem")
        configuration.replicas = MySQLReplicaConfiguration(endpoints: [.tcp(host: "db-r1"), .tcp(host: "db-r2")])
        let log = try MySQLDatastore(configuration: configuration)
        try await log.createIfMissing()       // or whycache-tool init-store, or Schema/whycache_log.sql
        let cache = try SharedCache(statePath: "/dev/shm/flags.whycache", datastore: log)
        _ = cache
    }
}

@Suite struct DocumentationSnippetTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The documents whose snippets are compiled here: the README and every
    /// DocC article.
    static func documents() throws -> [URL] {
        let sources = root.appendingPathComponent("Sources")
        var articles: [URL] = []
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            let catalog = sources.appendingPathComponent(module).appendingPathComponent(module + ".docc")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: catalog.path) else { continue }
            articles += names.filter { $0.hasSuffix(".md") }.map { catalog.appendingPathComponent($0) }
        }
        return [root.appendingPathComponent("README.md")] + articles.sorted { $0.path < $1.path }
    }

    /// The ```swift blocks of `document`, each as its lines.
    static func snippets(of document: URL) throws -> [[String]] {
        let text = try String(contentsOf: document, encoding: .utf8)
        var blocks: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line == "```swift" {
                current = []
            } else if current != nil, line.hasPrefix("```") {
                blocks.append(current ?? [])
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    @Test func everySnippetOfTheDocumentationIsCompiledByThisFile() throws {
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let compiled = source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let documents = try Self.documents()
        #expect(documents.count >= 7, "the DocC articles were not found: \(documents)")
        #expect(try Self.snippets(of: documents[0]).count >= 6, "the README's Swift snippets were not found")
        for document in documents {
            for block in try Self.snippets(of: document) where block.first != "// Package.swift" {
                // Imports are this file's own, at its top.
                let lines = block.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                for line in lines where line.hasPrefix("import ") {
                    #expect(compiled.contains(line), "this file does not \(line)")
                }
                // The other lines in order, as one run of this file's lines.
                let code = lines.filter { !$0.hasPrefix("import ") }
                let start = compiled.indices.first { index in
                    compiled[index...].filter { !$0.isEmpty }.starts(with: code)
                }
                #expect(start != nil, "a snippet of \(document.lastPathComponent) is not compiled here; it starts with: \(code.first ?? "")")
            }
        }
    }
}
