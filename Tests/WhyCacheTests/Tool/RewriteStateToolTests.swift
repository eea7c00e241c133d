import Foundation
import Testing
import WhyCache

/// `whycache-tool rewrite-state` as a process: the rewritten file verifies
/// against the log and keeps following it; its JSON report; a missing file.
@Suite struct RewriteStateToolTests {
    @Test func aRewrittenStateVerifiesAndKeepsFollowingTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            let state = directory + "/state"
            for index in (0..<500).shuffled() {
                _ = try await store.append(try LogRecord([.set(key: bytes("k\(index)"), value: bytes("v\(index)"))]).encoded())
            }
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", state]).lines == ["500"])
            let before = try SharedStateFile.open(at: state).fileIdentifier

            let text = try await ToolRunner.run(["rewrite-state", "--state", state])
            #expect(text.status == 0, "\(text.errors)")
            #expect(text.lines.first?.hasPrefix("rewrote update 500: 500 keys, ") == true, "\(text.lines)")
            #expect(try SharedStateFile.open(at: state).fileIdentifier != before)
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", state]).lines == ["equal at update 500: 500 keys"])

            _ = try await store.append(try LogRecord([.delete(key: bytes("k7")), .set(key: bytes("new"), value: bytes("x"))]).encoded())
            let json = try await ToolRunner.run(["rewrite-state", "--json", "--state", state])
            #expect(json.status == 0, "\(json.errors)")
            let summary = try JSONDecoder().decode(StateFileRewriteSummary.self, from: Data((json.lines.first ?? "").utf8))
            #expect(summary.isInstalled && summary.updateID == 500 && summary.keyCount == 500)
            #expect(try await ToolRunner.run(["update", "--store", log, "--state", state]).lines == ["501"])
            #expect(try await ToolRunner.run(["verify", "--store", log, "--state", state]).lines == ["equal at update 501: 500 keys"])
        }
    }

    @Test func aMissingStateFileFailsWithoutCreatingOne() async throws {
        try await withTemporaryDirectory { directory in
            let result = try await ToolRunner.run(["rewrite-state", "--state", directory + "/absent"])
            #expect(result.status == 3, "\(result.lines) \(result.errors)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/absent"))
        }
    }
}
