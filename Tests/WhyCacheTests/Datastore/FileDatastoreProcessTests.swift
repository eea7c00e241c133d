import Foundation
import Testing
import WhyCache

/// ``FileDatastore`` shared by real, separate processes (the test helper),
/// some of which are killed in the middle of appending.
@Suite struct FileDatastoreProcessTests {
    private typealias Fixture = FileDatastoreFixture

    @Test func fourProcessesAppendConcurrently() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory, options: FileDatastoreOptions(segmentSize: 64 << 10))
            let perProcess = 150
            let helpers = try (0..<4).map { try HelperProcess(["datastore-append", directory, "p\($0)", String(perProcess), "always"]) }
            for helper in helpers {
                let result = await helper.finish()
                #expect(result.status == 0, "helper failed: \(result.errors)")
            }
            let entries = try await Fixture.allRecords(store)
            #expect(entries.map(\.updateID) == Array(1...UInt64(4 * perProcess)))
            var indexes: [String: [Int]] = [:]
            for entry in entries {
                guard let (tag, index) = Fixture.parseHelperPayload(entry.payload) else {
                    Issue.record("record \(entry.updateID) is damaged")
                    continue
                }
                indexes[tag, default: []].append(index)
            }
            // Each process's records are all there, once, in the order it wrote them.
            for process in 0..<4 {
                #expect(indexes["p\(process)"] == Array(0..<perProcess))
            }
            #expect(try Fixture.segmentPaths(directory).count > 1)
        }
    }

    @Test func appendersKilledMidAppendLeaveACleanLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            var acknowledged: UInt64 = 0
            for round in 0..<10 {
                let helper = try HelperProcess(["datastore-append-forever", directory, "k\(round)", "150000"])
                let first = await helper.readLine { $0.hasPrefix("appended ") }
                #expect(first != nil, "the appender never appended")
                usleep(UInt32.random(in: 0...30_000))
                helper.send(SIGKILL)
                let result = await helper.finish()
                #expect(result.status == -SIGKILL)
                let lines = [first].compactMap { $0 } + result.lines
                for line in lines where line.hasPrefix("appended ") {
                    acknowledged = max(acknowledged, UInt64(line.dropFirst("appended ".count)) ?? 0)
                }
                // What was acknowledged is there; everything there is complete.
                let fresh = try await FileDatastore.open(directory: directory)
                let latest = try await fresh.latestUpdateID()
                #expect(latest >= acknowledged)
                let entries = try await Fixture.allRecords(fresh)
                #expect(entries.map(\.updateID) == Array(1...latest))
                for entry in entries where Fixture.parseHelperPayload(entry.payload) == nil {
                    Issue.record("record \(entry.updateID) is damaged")
                }
            }
            // The next append is not blocked and continues the ids.
            let latest = try await store.latestUpdateID()
            #expect(try await store.append(Array("after the crashes".utf8)) == latest + 1)
            let entries = try await Fixture.allRecords(store)
            #expect(entries.count == Int(latest) + 1)
            #expect(entries.last?.payload == Array("after the crashes".utf8))
        }
    }
}
