import Foundation
import Testing
import WhyCache

/// Subscribed state files across processes: writer processes write random
/// workloads while other processes — the test helper and the tool — update
/// state files that subscribe to prefixes; every one of them ends holding
/// exactly the log's keys under its prefixes.
@Suite(.serialized) struct SharedCacheSubscriptionProcessTests {
    static let seed: UInt64 = 0x5EED_5B5C

    @Test func subscribedStatesUpdatedByOtherProcessesHoldExactlyTheirKeys() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = directory + "/log"
            let prefixes = ["k1", "k25"]
            let prefixBytes = prefixes.map(bytes)
            let toolArguments = ["--store", "file://\(log)", "--state", directory + "/tool"]
            // The tool creates its state file subscribed; later runs keep its prefixes.
            let created = try await ToolRunner.run(["update"] + toolArguments + prefixes.flatMap { ["--prefix", $0] })
            #expect(created.status == 0, "\(created.errors)")

            let stopFile = directory + "/stop"
            let updater = try HelperProcess(["cache-updater", log, directory + "/follower", stopFile] + prefixes)
            let writers = try [
                HelperProcess(["cache-writer", log, directory + "/all", "\(Self.seed)", "1500", "300"]),
                HelperProcess(["cache-writer", log, directory + "/all", "\(Self.seed + 1)", "1500", "300"]),
                // Writes keys across and outside its own prefixes.
                HelperProcess(["cache-writer", log, directory + "/subscribed-writer", "\(Self.seed + 2)", "1500", "300"] + prefixes),
            ]
            while writers.contains(where: { $0.process.isRunning }) {
                let run = try await ToolRunner.run(["update"] + toolArguments)
                #expect(run.status == 0, "\(run.errors)")
                usleep(50_000)
            }
            for (index, writer) in writers.enumerated() {
                let result = await writer.finish()
                #expect(result.status == 0, "writer \(index): \(result.errors)")
                #expect(result.lines.last?.hasPrefix("done 1500 ") == true, "writer \(index): \(result.lines.suffix(2))")
            }
            _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
            let latest = try await store.latestUpdateID()
            let result = await updater.finish()
            #expect(result.status == 0, "updater: \(result.errors)")
            #expect(result.lines.last?.hasSuffix(" \(latest)") == true, "updater ended at \(result.lines)")
            #expect(try await ToolRunner.run(["update"] + toolArguments).lines == ["\(latest)"])

            let all = try await CacheFixture.replay(store)
            let expected = all.filter { entry in prefixBytes.contains { entry.key.starts(with: $0) } }
            #expect(expected.count > 20 && expected.count < all.count)
            var configuration = SharedCache.Configuration()
            configuration.stateFileOptions.subscribedPrefixes = prefixBytes
            for name in ["follower", "subscribed-writer", "tool"] {
                let path = directory + "/" + name
                let cache = try SharedCache(statePath: path, datastore: store, configuration: configuration)
                try await cache.update()
                #expect(try cache.updateID() == latest, "\(name)")
                try CacheFixture.expectContents(cache, equal: expected)
                let file = try SharedStateFile.open(at: path)
                #expect(file.subscribedPrefixes == prefixBytes, "\(name)")
                #expect(try file.verify() == expected.count, "\(name)")
                let verify = try await ToolRunner.run(["verify", "--store", "file://\(log)", "--state", path])
                #expect(verify.lines == ["equal at update \(latest): \(expected.count) keys"], "\(name): \(verify.errors)")
            }
            let everything = try SharedCache(statePath: directory + "/all", datastore: store)
            try await everything.update()
            try CacheFixture.expectContents(everything, equal: all)

            // Other prefixes are refused, by another process and by the tool,
            // and the file stays as it is.
            let other = try await HelperProcess(["cache-updater", log, directory + "/follower", stopFile, "k3"]).finish()
            #expect(other.status == 1 && other.errors.contains("but the cache is configured for the keys under \"k3\""),
                    "\(other.status) \(other.errors)")
            let refused = try await ToolRunner.run(["update", "--prefix", "k3"] + toolArguments)
            #expect(refused.status == 3)
            #expect(refused.errors.contains(#"subscribes to the keys under "k1", "k25", but the cache is configured for the keys under "k3""#),
                    "\(refused.errors)")
            #expect(try SharedStateFile.open(at: directory + "/follower").subscribedPrefixes == prefixBytes)
        }
    }
}
