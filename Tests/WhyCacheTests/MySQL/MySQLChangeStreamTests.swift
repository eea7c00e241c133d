import Foundation
import Testing
import WhyCache
import WhyCacheMySQL
import WhyCacheTestSupport

/// Change streams over MySQL, whose log compacts single-key records: a
/// stream read after the writes delivers changes in update-id order, each
/// one what the log wrote at that id, and every key's last change.
@Suite struct MySQLChangeStreamTests {
    @Test func aLateStreamDeliversEveryKeysLastChangeInOrder() async throws {
        let store = try await MySQLTestServer.makeStore()
        try await withTemporaryDirectory { directory in
            let cache = try CacheFixture.makeCache(directory, store)
            let stream = try cache.changes()
            var generator = SeededGenerator(seed: 0x5C)
            var written: [UInt64: [LogOperation]] = [:]
            var last: [[UInt8]: CacheChange] = [:]
            for index in 0..<400 {
                let count = Int.random(in: 0..<3, using: &generator) == 0 ? 2 : 1
                let operations: [LogOperation] = (0..<count).map { item in
                    let key = bytes("k\(Int.random(in: 0..<25, using: &generator))-\(item)")
                    return index % 5 == 4 ? .delete(key: key) : .set(key: key, value: bytes("\(index)"))
                }
                let id = try await cache.write(operations)
                written[id] = operations
                for operation in operations {
                    last[operation.key] = CacheChange(updateID: id, key: operation.key, value: operation.value)
                }
            }
            let latest = try cache.updateID()
            // The stream's last event: the last operation of the newest record.
            let newest = try #require(written[latest]?.last)
            let final = CacheChange(updateID: latest, key: newest.key, value: newest.value)
            var delivered: [CacheChange] = []
            for try await event in stream {
                guard case .changed(let change) = event else { Issue.record("unexpected \(event)"); break }
                delivered.append(change)
                if change == final { break }
            }
            #expect(delivered.map(\.updateID) == delivered.map(\.updateID).sorted())
            for change in delivered {
                let operations = try #require(written[change.updateID])
                #expect(operations.contains { $0.key == change.key && $0.value == change.value })
            }
            var seen: [[UInt8]: CacheChange] = [:]
            for change in delivered { seen[change.key] = change }
            #expect(seen == last)
            #expect(delivered.count < written.values.reduce(0) { $0 + $1.count }, "compaction left nothing out")
        }
    }
}
