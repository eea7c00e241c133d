import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// ``StateVerifier`` on the file datastore (the MySQL suite runs the same
/// checks through ``StateVerifierChecks`` on a compacting log).
@Suite struct StateVerifierTests {
    private func check(_ body: (StateVerifierChecks) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            try await body(StateVerifierChecks(directory: directory) { try await CacheFixture.makeStore(directory + "/" + UUID().uuidString) })
        }
    }

    @Test func aStateBuiltFromTheLogIsEqual() async throws { try await check { try await $0.aStateBuiltFromTheLogIsEqual() } }
    @Test func everyKindOfDifferenceIsFound() async throws { try await check { try await $0.everyKindOfDifferenceIsFound() } }
    @Test func aRewrittenLogIsVerifiedFromItsCheckpoint() async throws { try await check { try await $0.aRewrittenLogIsVerifiedFromItsCheckpoint() } }
}

/// The checks of a state verification, for any datastore.
struct StateVerifierChecks {
    /// Where state files and scratch files go.
    let directory: String
    /// A fresh, empty, created datastore.
    let makeStore: () async throws -> any Datastore

    /// Random sets and deletes; a machine that is behind is brought to the
    /// end of the log and found equal; no scratch file stays behind.
    func aStateBuiltFromTheLogIsEqual() async throws {
        let log = ModelledLog(store: try await makeStore())
        var generator = SeededGenerator(seed: 0xFE21)
        for round in 0..<400 {
            let key = bytes("k\(Int.random(in: 0..<60, using: &generator))")
            try await log.write(round % 5 == 4 ? [.delete(key: key)] : [.set(key: key, value: bytes("v\(round)")), .set(key: bytes("s\(round % 7)"), value: bytes("\(round)"))])
        }
        let cache = try CacheFixture.makeCache(directory, log.store)
        try await cache.update(through: 100)
        let outcome = try await StateVerifier(cache: cache, scratchDirectory: directory).verify()
        #expect(outcome.isEqual, "\(outcome.differences)")
        #expect(outcome.updateID == (try await log.store.latestUpdateID()))
        #expect(outcome.stateKeyCount == log.model.count)
        try CacheFixture.expectContents(cache, equal: log.model)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("whycache-verify.") }.isEmpty)
    }

    /// A changed value, a missing key and an extra key are each reported,
    /// at most `maximumDifferences` of them listed and all counted.
    func everyKindOfDifferenceIsFound() async throws {
        let log = ModelledLog(store: try await makeStore())
        for index in 0..<50 { try await log.write([.set(key: bytes("k\(index)"), value: bytes("v\(index)"))]) }
        let cache = try CacheFixture.makeCache(directory, log.store)
        try await cache.update()
        let file = try SharedStateFile.open(at: cache.statePath)
        try file.write { transaction in
            try transaction.setValue(bytes("changed"), forKey: bytes("k10"))
            _ = try transaction.removeValue(forKey: bytes("k20"))
            try transaction.setValue(bytes("extra"), forKey: bytes("k30+"))
            try transaction.setValue(bytes("extra"), forKey: bytes("z"))
        }
        let outcome = try await StateVerifier(cache: cache, scratchDirectory: directory).verify(maximumDifferences: 3)
        #expect(!outcome.isEqual)
        #expect(outcome.differenceCount == 4)
        #expect(outcome.differences == [
            .valueDiffers(key: bytes("k10"), stateValue: bytes("changed"), logValue: bytes("v10")),
            .missingFromState(key: bytes("k20"), logValue: bytes("v20")),
            .notInLog(key: bytes("k30+"), stateValue: bytes("extra")),
        ])
        #expect(outcome.stateKeyCount == 51 && outcome.logKeyCount == 50)
    }

    /// After a history rewrite the replay starts from the checkpoint, and a
    /// state that kept its own copy of a filtered-out key differs on it.
    func aRewrittenLogIsVerifiedFromItsCheckpoint() async throws {
        let log = ModelledLog(store: try await makeStore())
        for index in 0..<120 { try await log.write([.set(key: bytes("k\(index % 30)"), value: bytes("v\(index)"))]) }
        try await log.write([.set(key: bytes("private/x"), value: bytes("p"))])
        let cache = try CacheFixture.makeCache(directory, log.store)
        try await cache.update()
        _ = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory)
            .rewrite(through: 100, keeping: { !$0.starts(with: bytes("private/")) })
        #expect(try await log.store.firstRetainedUpdateID() > 1)
        for index in 0..<10 { try await log.write([.set(key: bytes("k\(index)"), value: bytes("after"))]) }
        let outcome = try await StateVerifier(cache: cache, scratchDirectory: directory).verify()
        // The private key was written after the limit, so the log still holds it.
        #expect(outcome.isEqual, "\(outcome.differences)")

        _ = try await HistoryRewriter(datastore: log.store, scratchDirectory: directory)
            .rewrite(through: try await log.store.latestUpdateID(), keeping: { !$0.starts(with: bytes("private/")) })
        let filtered = try await StateVerifier(cache: cache, scratchDirectory: directory).verify()
        #expect(filtered.differences == [.notInLog(key: bytes("private/x"), stateValue: bytes("p"))])
    }
}
