import Foundation
import Testing
import WhyCache

/// `whycache-tool rewrite-history file …`, run as a separate process.
@Suite struct RewriteHistoryToolTests {
    /// The tool prints each step and the log's size before and after; the
    /// log shrinks and a machine that had fallen behind converges.
    @Test func rewritesAFileLogWithProgress() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            for index in 0..<100 {
                _ = try await store.append(try LogRecord([.set(key: bytes("k\(index % 10)"), value: bytes("v\(index)"))]).encoded())
            }
            let behind = try CacheFixture.makeCache(directory, store, name: "behind")
            let tool = HelperProcess.builtExecutable("whycache-tool")
            let result = try HelperProcess(
                ["rewrite-history", "file", "--log", directory + "/log", "--through", "90", "--scratch", directory], executable: tool
            ).finish()
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.lines.contains("rewrite-history: writing the checkpoint at update 90"), "\(result.lines)")
            #expect(result.lines.contains { $0.hasPrefix("log before: 100 records") }, "\(result.lines)")
            #expect(result.lines.contains { $0.hasPrefix("log after:  10 records") }, "\(result.lines)")
            #expect(try await store.firstRetainedUpdateID() == 91)
            try await behind.update()
            try CacheFixture.expectContents(behind, equal: Dictionary(uniqueKeysWithValues: (90..<100).map { (bytes("k\($0 % 10)"), bytes("v\($0)")) }))

            let busy = try await store.acquireMaintenanceLock()
            let refused = try HelperProcess(["rewrite-history", "file", "--log", directory + "/log", "--scratch", directory], executable: tool).finish()
            #expect(refused.status == 2)
            #expect(refused.errors.contains("maintenance lock"))
            await busy.release()
        }
    }
}
