import Foundation
import Testing
import WhyCache

/// `whycache-tool rewrite-history --store file://…`, run as a separate process.
@Suite struct RewriteHistoryToolTests {
    /// The tool prints the log's size before and after (and no progress when
    /// not on a terminal); the log shrinks and a machine that had fallen
    /// behind converges. A rewrite refused because another holds the
    /// maintenance lock exits with status 3.
    @Test func rewritesAFileLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            for index in 0..<100 {
                _ = try await store.append(try LogRecord([.set(key: bytes("k\(index % 10)"), value: bytes("v\(index)"))]).encoded())
            }
            let behind = try CacheFixture.makeCache(directory, store, name: "behind")
            let tool = HelperProcess.builtExecutable("whycache-tool")
            let url = "file://\(directory)/log"
            let result = try await HelperProcess(
                ["rewrite-history", "--store", url, "--through", "90", "--scratch", directory], executable: tool
            ).finish()
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.errors.isEmpty, "progress was drawn without a terminal: \(result.errors)")
            #expect(result.lines.count == 3, "\(result.lines)")
            #expect(result.lines.contains { $0.hasPrefix("log before: 100 records") }, "\(result.lines)")
            #expect(result.lines.contains { $0.hasPrefix("log after:  10 records") }, "\(result.lines)")
            #expect(try await store.firstRetainedUpdateID() == 91)
            try await behind.update()
            try CacheFixture.expectContents(behind, equal: Dictionary(uniqueKeysWithValues: (90..<100).map { (bytes("k\($0 % 10)"), bytes("v\($0)")) }))

            let latest = try await HelperProcess(["rewrite-history", "--store", url, "--through", "latest", "--scratch", directory], executable: tool).finish()
            #expect(latest.status == 0, "\(latest.errors)")
            #expect(try await store.firstRetainedUpdateID() == 101)

            let busy = try await store.acquireMaintenanceLock()
            let refused = try await HelperProcess(["rewrite-history", "--store", url, "--through", "latest", "--scratch", directory], executable: tool).finish()
            #expect(refused.status == 3)
            #expect(refused.errors.contains("maintenance lock"))
            await busy.release()

            let bad = try await HelperProcess(["rewrite-history", "--store", url, "--through", "soon"], executable: tool).finish()
            #expect(bad.status == 2, "\(bad.errors)")
        }
    }

    /// `--through latest` on a log that holds no record yet (a cron job on a
    /// new deployment) succeeds and changes nothing; an explicit id on that
    /// log is a usage error of the datastore (exit 3), named as such.
    @Test func latestOnAnEmptyLogIsANoOp() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let tool = HelperProcess.builtExecutable("whycache-tool")
            let url = "file://\(directory)/log"
            let latest = try await HelperProcess(["rewrite-history", "--store", url, "--through", "latest", "--scratch", directory], executable: tool).finish()
            #expect(latest.status == 0, "\(latest.errors)")
            #expect(latest.lines == ["the log is empty: nothing to rewrite"])
            #expect(try await store.latestUpdateID() == 0)
            #expect(try await store.firstRetainedUpdateID() == 1)

            let explicit = try await HelperProcess(["rewrite-history", "--store", url, "--through", "1", "--scratch", directory], executable: tool).finish()
            #expect(explicit.status == 3, "\(explicit.errors)")
            #expect(explicit.errors.contains("the log is empty"), "\(explicit.errors)")
        }
    }
}
