import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// `whycache-tool rewrite-history` killed with SIGKILL during each step:
/// the log still yields the same state to every reader, machines converge,
/// and running the rewrite again completes it.
@Suite(.serialized) struct HistoryRewriterCrashTests {
    @Test func aRewriteKilledAtAnyStepLeavesTheLogUsableAndARerunFinishes() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            try await Self.killRewrites(of: store, toolArguments: ["--store", "file://\(directory)/log"], directory: directory)
        }
    }

    /// The body of ``aRewriteKilledAtAnyStepLeavesTheLogUsableAndARerunFinishes()``
    /// for any datastore that `whycache-tool rewrite-history` reaches with
    /// `toolArguments` (its subcommand and options).
    static func killRewrites(of store: any Datastore, toolArguments: [String], directory: String) async throws {
        let log = ModelledLog(store: store)
        var generator = SeededGenerator(seed: 0x5EED_2E)
        for batch in 0..<30 {
            for record in 0..<200 {
                let operations: [LogOperation] = (0..<5).map { item in
                    let key = bytes("k\(Int.random(in: 0..<20_000, using: &generator))")
                    return item == 4 ? .delete(key: key) : .set(key: key, value: bytes("\(batch)-\(record)-\(item)"))
                }
                try await log.write(operations)
            }
        }
        let limit = try await store.latestUpdateID() - 10
        let middle = try CacheFixture.makeCache(directory, store, name: "middle")
        try await middle.update(through: limit / 2)
        let tool = HelperProcess.builtExecutable("whycache-tool")
        let arguments = ["rewrite-history"] + toolArguments + ["--through", "\(limit)", "--scratch", directory, "--verbose"]
        let steps = ["building the state", "writing the checkpoint", "removing the records"]
        var killed = 0
        for (round, step) in (steps + steps).enumerated() {
            let rewrite = try HelperProcess(arguments, executable: tool)
            let delay = UInt32.random(in: 0...(round < 3 ? 2_000 : 20_000), using: &generator)
            _ = await rewrite.readLine(until: { $0.contains(step) }, thenSend: SIGKILL, after: delay)
            if await rewrite.finish().status == -SIGKILL { killed += 1 }
            // Whatever the rewrite had done, a machine that starts now and
            // one that is behind both reach the log's state.
            let fresh = try CacheFixture.makeCache(directory, store, name: "fresh-\(round)")
            try await fresh.update()
            try CacheFixture.expectContents(fresh, equal: log.model)
            fresh.close()
        }
        #expect(killed >= 3, "only \(killed) of 6 rewrites were still running when killed")
        let finished = try await HelperProcess(arguments, executable: tool).finish()
        #expect(finished.status == 0, "\(finished.errors)")
        #expect(try await store.firstRetainedUpdateID() == limit + 1)
        try await middle.update()
        try CacheFixture.expectContents(middle, equal: log.model)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("whycache-rewrite.") }
        #expect(leftovers.isEmpty, "scratch files of killed rewrites: \(leftovers)")
    }
}
