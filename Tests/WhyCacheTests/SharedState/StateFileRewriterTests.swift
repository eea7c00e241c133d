import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// ``StateFileRewriter``: a live file rewritten in key order keeps its state,
/// identity and options; commits made while it runs are caught up; other
/// processes keep writing meanwhile; and a rewriter killed at any moment
/// leaves the file whole.
@Suite(.serialized) struct StateFileRewriterTests {
    /// The script's state through `update` in a new file at `path`, applied
    /// in one transaction per script transaction (so in log order).
    private func makeScriptFile(_ path: String, through update: UInt64, options: SharedStateFile.Options = .init()) throws {
        let file = try SharedStateFile.open(at: path, options: options)
        for u in 1...update {
            try file.write { transaction in
                for operation in StateScript.operations(u) {
                    switch operation {
                    case .set(let key, let value): try transaction.setValue(value, forKey: key)
                    case .remove(let key): _ = try transaction.removeValue(forKey: key)
                    }
                }
                try transaction.setUpdateID(u)
                try transaction.markInitialized()
                transaction.noteAppliedRecord(checksum: UInt32(truncatingIfNeeded: u &* 2_654_435_761))
            }
        }
    }

    private func contents(_ file: SharedStateFile) throws -> [[UInt8]: [UInt8]] {
        let snapshot = try file.snapshot()
        defer { snapshot.close() }
        return Dictionary(uniqueKeysWithValues: try snapshot.entries().map { ($0.key, $0.value) })
    }

    private func leftovers(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(StateFileRewriter.temporaryMarker) }
    }

    @Test func aRewrittenFileHoldsTheSameStateIdentityAndOptions() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            var options = SharedStateFile.Options()
            options.readerSlotCount = 64
            options.maximumFileSize = 256 << 20
            options.permissions = 0o640
            options.subscribedPrefixes = [Array("k".utf8), Array("big".utf8)]
            try makeScriptFile(path, through: 120, options: options)
            let old = try SharedStateFile.open(at: path)
            let before = try contents(old)
            let oldSnapshot = try old.snapshot()

            let summary = try StateFileRewriter().rewrite(at: path)

            #expect(summary.isInstalled)
            #expect(summary.keysCopied == before.count && summary.keyCount == before.count && summary.updateID == 120)
            #expect(summary.catchUpRounds == 0 && summary.changesCaughtUp == 0 && summary.changesUnderLock == 0)
            #expect(summary.bytesAfter < summary.bytesBefore, "\(summary)")
            #expect(old.isRetired)
            #expect(try oldSnapshot.entries().count == before.count, "the old file stays readable for its readers")
            let new = try SharedStateFile.open(at: path)
            #expect(new.fileIdentifier != old.fileIdentifier)
            #expect(try contents(new) == before)
            #expect(try new.verify() == before.count)
            let snapshot = try new.snapshot()
            #expect(snapshot.updateID == 120 && snapshot.isInitialized)
            #expect(snapshot.appliedRecordChecksum == oldSnapshot.appliedRecordChecksum && snapshot.appliedRecordChecksum != nil)
            let created = try new.creationOptions()
            #expect(created.readerSlotCount == 64 && created.maximumFileSize == 256 << 20 && created.permissions == 0o640)
            #expect(created.durability == .processCrash && new.subscribedPrefixes == old.subscribedPrefixes)
            #expect(try leftovers(in: directory).isEmpty)
        }
    }

    /// Commits after the copy are caught up without the lock; commits after
    /// the catch-up rounds, under it.
    @Test func commitsDuringTheRewriteAreCaughtUp() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try makeScriptFile(path, through: 30)
            let live = try SharedStateFile.open(at: path)
            let before = try contents(live)
            let removed = Array(before.keys.sorted { $0.lexicographicallyPrecedes($1) }.prefix(20))
            var rewriter = StateFileRewriter()
            rewriter.betweenSteps = { step in
                try live.write { transaction in
                        if step == 0 {
                            for key in removed { _ = try transaction.removeValue(forKey: key) }
                            for index in 0..<30 { try transaction.setValue(Array("new".utf8), forKey: Array("k-new-\(index)".utf8)) }
                            try transaction.setUpdateID(31)
                        } else if step == -1 {
                            for index in 0..<10 { try transaction.setValue(Array("under the lock".utf8), forKey: Array("k-new-\(index)".utf8)) }
                            try transaction.setUpdateID(32)
                        }
                }
            }
            let summary = try rewriter.rewrite(at: path)
            #expect(summary.isInstalled && summary.updateID == 32)
            #expect(summary.catchUpRounds == 1 && summary.changesCaughtUp == 50 && summary.changesUnderLock == 10, "\(summary)")
            var expected = before
            for key in removed { expected[key] = nil }
            for index in 0..<30 { expected[Array("k-new-\(index)".utf8)] = Array(index < 10 ? "under the lock".utf8 : "new".utf8) }
            let new = try SharedStateFile.open(at: path)
            #expect(try contents(new) == expected)
            #expect(try new.verify() == expected.count && new.updateID() == 32)
        }
    }

    /// Writes that change more keys per round than the rewrite may apply
    /// under the lock, round after round: the rewrite gives up after its
    /// rounds, leaves the file as it was and deletes its copy. With no
    /// rounds allowed, everything is caught up under the lock.
    @Test func busyWritesMakeTheRewriteGiveUpOrCatchUpUnderTheLock() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try makeScriptFile(path, through: 20)
            let live = try SharedStateFile.open(at: path)
            let commitTenKeys: @Sendable (Int) throws -> Void = { step in
                try live.write { transaction in
                    for index in 0..<10 { try transaction.setValue(Array("step \(step)".utf8), forKey: Array("k-busy-\(index)".utf8)) }
                }
            }
            var rewriter = StateFileRewriter()
            rewriter.maximumChangesBeforeLocking = 5
            rewriter.maximumCatchUpRounds = 3
            rewriter.betweenSteps = commitTenKeys
            let gaveUp = try rewriter.rewrite(at: path)
            #expect(gaveUp.outcome == .writesDidNotSettle && !gaveUp.isInstalled)
            #expect(gaveUp.catchUpRounds == 3 && gaveUp.changesCaughtUp == 30, "\(gaveUp)")
            #expect(try !live.isRetired && SharedStateFile.open(at: path).fileIdentifier == live.fileIdentifier)
            #expect(try leftovers(in: directory).isEmpty)

            rewriter.maximumCatchUpRounds = 0
            let locked = try rewriter.rewrite(at: path)
            #expect(locked.isInstalled && locked.catchUpRounds == 0 && locked.changesUnderLock == 10, "\(locked)")
            #expect(try contents(SharedStateFile.open(at: path)) == contents(live))
        }
    }

    /// A writer process commits script transactions as fast as it can while
    /// the file is rewritten: the installed file holds exactly the script's
    /// state at its update id, which is one the writer reached.
    @Test func aWriterProcessKeepsCommittingDuringTheRewrite() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try makeScriptFile(path, through: 60)
            let writer = try HelperProcess(["state-script-writer", path, "0", "0"])
            #expect(writer.readLine { $0.hasPrefix("ready ") } == "ready 60")
            #expect(writer.readLine { $0.hasPrefix("committed ") } != nil)
            // Catch-up correctness, not the settling rule: every round may lock.
            var rewriter = StateFileRewriter()
            rewriter.maximumChangesBeforeLocking = .max
            let summary = try rewriter.rewrite(at: path)
            writer.send(SIGKILL)
            // The writer prints after each commit; the last commit may have
            // been made (and rewritten) without its line printed yet.
            let reached = writer.finish().lines.compactMap { UInt64($0.dropFirst("committed ".count)) }.max() ?? 0
            #expect(summary.isInstalled && summary.updateID > 60 && summary.updateID <= reached + 1, "\(summary), writer at \(reached)")
            let new = try SharedStateFile.open(at: path)
            #expect(try !new.isRetired && new.updateID() == summary.updateID)
            #expect(try contents(new) == StateScript.state(through: summary.updateID))
            #expect(try new.verify() == summary.keyCount)
        }
    }

    /// A writer process rewrites whole groups of keys (every key of a group
    /// in one transaction, one value) and reader processes check that no
    /// group is ever torn, while the file is rewritten under them (two
    /// files): every state the copy caught up to was a whole commit, so the
    /// installed files hold whole groups too, and the readers (which keep
    /// the file they opened) never see a torn group.
    @Test func groupsStayWholeThroughRewritesUnderAWriterAndReaders() throws {
        try withTemporaryDirectory { directory in
            let groups = 40
            let keys = 25
            for round in 0..<2 {
                // The writer numbers its transactions from 1: a new file each round.
                let path = directory + "/state-\(round)"
                _ = try SharedStateFile.open(at: path)
                let readers = try (0..<2).map { _ in try HelperProcess(["state-group-reader", path, String(groups), String(keys), "1"]) }
                for reader in readers { #expect(reader.readLine() == "ready") }
                let writer = try HelperProcess(["state-group-writer", path, String(groups), String(keys), "1500"])
                #expect(writer.readLine() == "ready")
                usleep(20_000)
                let summary = try StateFileRewriter().rewrite(at: path)
                #expect(summary.isInstalled)
                let written = writer.finish()
                #expect(written.status == 0, "\(written.errors)")
                for reader in readers {
                    let result = reader.finish()
                    #expect(result.status == 0, "a reader saw a torn group: \(result.lines) \(result.errors)")
                }
                let snapshot = try SharedStateFile.open(at: path).snapshot()
                #expect(snapshot.updateID == summary.updateID, "the writer wrote to the old file after the install")
                for group in 0..<groups {
                    let values = try Set(snapshot.entries(in: .prefix(Array("g\(group)/".utf8))).map(\.value))
                    #expect(values.count <= 1, "group \(group) is torn in the rewritten file")
                }
                #expect(try snapshot.verify() == snapshot.count)
                snapshot.close()
            }
        }
    }

    /// A rewriter process SIGKILLed at random moments: each time the path
    /// holds the state as it was — the old file or its finished rewrite — or,
    /// when the kill falls between marking the old file retired and the
    /// exchange, a retired file that the next opener removes (the documented
    /// window). The next rewrite deletes the copies the killed ones left.
    @Test func aRewriterKilledAtRandomMomentsLeavesTheFileWhole() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try makeScriptFile(path, through: 150)
            let expected = StateScript.state(through: 150)
            var generator = SeededGenerator(seed: 0x5EED_2E57)
            var outcomes: [String: Int] = [:]
            for round in 0..<16 {
                let rewriter = try HelperProcess(["state-rewrite", path])
                #expect(rewriter.readLine() == "ready")
                usleep(UInt32.random(in: 0...70_000, using: &generator))
                rewriter.send(SIGKILL)
                let result = rewriter.finish()
                let finished = result.lines.contains { $0.hasPrefix("rewritten ") }
                let file = try SharedStateFile.open(at: path)
                if file.isRetired {
                    outcomes["retired at the path", default: 0] += 1
                    try SharedStateFile.remove(at: path)
                    try makeScriptFile(path, through: 150)
                    continue
                }
                outcomes[finished ? "finished" : (result.status == -SIGKILL ? "killed" : "ended"), default: 0] += 1
                #expect(try file.updateID() == 150, "round \(round)")
                #expect(try contents(file) == expected, "round \(round)")
                #expect(try file.verify() == expected.count, "round \(round)")
            }
            let summary = try StateFileRewriter().rewrite(at: path)
            #expect(summary.isInstalled && summary.updateID == 150)
            #expect(try leftovers(in: directory).isEmpty)
            print("StateFileRewriterTests: 16 kills: \(outcomes.sorted { $0.key < $1.key })")
        }
    }

    @Test func aMissingFileIsAnError() throws {
        try withTemporaryDirectory { directory in
            #expect(throws: StateFileError.self) { try StateFileRewriter().rewrite(at: directory + "/absent") }
            #expect(!FileManager.default.fileExists(atPath: directory + "/absent"))
        }
    }
}
