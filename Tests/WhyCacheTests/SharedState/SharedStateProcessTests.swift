import Foundation
import Testing
import WhyCache

/// The shared-state file used by real, separate processes at the same time
/// (the test helper): torn reads, the creation race, and a reader that dies
/// while it pins old data.
@Suite(.serialized) struct SharedStateProcessTests {
    /// Three reader processes take snapshots and check that every group of
    /// keys is whole (all keys of a group are written together, with one
    /// value) and that the update id never moves backwards, while a writer
    /// process commits 1,500 transactions and grows the file under them.
    @Test func readersNeverSeeATornTransactionWhileTheWriterGrowsTheFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let file = try SharedStateFile.open(at: path)
            let sizeBefore = try file.statistics().fileSize
            let groups = 64
            let keys = 32
            let transactions = 1500
            let readers = try (0..<3).map { _ in
                try HelperProcess(["state-group-reader", path, String(groups), String(keys), "4"])
            }
            // The readers map the small new file and start reading before the writer starts.
            for reader in readers { #expect(reader.readLine() == "ready") }
            let writer = try HelperProcess(["state-group-writer", path, String(groups), String(keys), String(transactions)])
            let written = writer.finish()
            #expect(written.status == 0, "writer failed: \(written.errors)")
            #expect(written.lines.contains("committed \(transactions)"))
            for (index, reader) in readers.enumerated() {
                let result = reader.finish()
                #expect(result.status == 0, "reader \(index) saw a torn read or failed: \(result.lines) \(result.errors)")
                let report = result.lines.last { $0.hasPrefix("reads ") }?.split(separator: " ") ?? []
                #expect(report.count == 4, "reader \(index) printed no report: \(result.lines)")
                if report.count == 4 {
                    #expect((Int(report[1]) ?? 0) > 0, "reader \(index) read nothing")
                    #expect(report[3] == "0", "reader \(index) saw \(report[3]) torn reads")
                }
            }
            let statistics = try file.statistics()
            #expect(statistics.fileSize > sizeBefore, "the file did not grow: \(sizeBefore) -> \(statistics.fileSize)")
            #expect(statistics.updateID == UInt64(transactions))
            #expect(try file.verify() == statistics.keyCount)
            // The final state is whole too.
            let snapshot = try file.snapshot()
            for group in 0..<groups {
                let values = try Set(snapshot.entries(in: .prefix(Array("g\(group)/".utf8))).map(\.value))
                #expect(values.count <= 1, "group \(group) is torn in the final state")
            }
        }
    }

    /// Eight processes are released at the same moment to open (and so
    /// create) a file that does not exist yet; all succeed and share one file.
    @Test func processesCreatingTheSameFileAtOnceShareOneFile() throws {
        try withTemporaryDirectory { directory in
            for round in 0..<4 {
                let path = directory + "/state\(round)"
                let go = directory + "/go\(round)"
                let openers = try (0..<8).map { _ in try HelperProcess(["state-open", path, go]) }
                for opener in openers { #expect(opener.readLine() == "waiting") }
                #expect(FileManager.default.createFile(atPath: go, contents: nil))
                var identifiers: Set<String> = []
                for opener in openers {
                    let result = opener.finish()
                    #expect(result.status == 0, "state-open failed: \(result.errors)")
                    let words = result.lines.first?.split(separator: " ") ?? []
                    #expect(words.count == 4 && words[0] == "file" && words[3] == "0", "unexpected output \(result.lines)")
                    if words.count == 4 { identifiers.insert(String(words[1])) }
                }
                #expect(identifiers.count == 1, "the processes opened different files: \(identifiers)")
                let file = try SharedStateFile.open(at: path)
                #expect(identifiers == [file.fileIdentifier])
                #expect(try file.verify() == 0)
            }
            // No temporary file of the creation protocol is left behind.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".creating.") }
            #expect(leftovers.isEmpty, "left behind: \(leftovers)")
        }
    }

    /// A reader process pins a snapshot and is killed while holding it. While
    /// it lives, overwritten blocks pile up as retired bytes and the file
    /// grows; once it is dead, the next transactions reclaim its slot, free
    /// the retired blocks and reuse them instead of growing the file.
    @Test func aReaderKilledWhilePinnedDoesNotPinSpaceForever() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let file = try SharedStateFile.open(at: path)
            let keys = (0..<2000).map { Array("key\($0)".utf8) }
            let valueSize = 100
            func overwriteAll(_ round: Int) throws {
                try file.write { transaction in
                    for key in keys {
                        try transaction.setValue([UInt8](repeating: UInt8(truncatingIfNeeded: round), count: valueSize), forKey: key)
                    }
                    try transaction.setUpdateID(UInt64(round))
                }
            }
            try overwriteAll(1)

            let holder = try HelperProcess(["state-pin-and-hold", path])
            #expect(holder.readLine { $0.hasPrefix("pinned ") } == "pinned 1")
            let slotsWhileHeld = try file.statistics().readerSlotsInUse
            for round in 2...6 { try overwriteAll(round) }
            let early = try file.statistics()
            for round in 7...36 { try overwriteAll(round) }
            let late = try file.statistics()
            // 35 transactions each replaced every leaf, which the pinned reader may still read.
            #expect(late.retiredBytes > early.retiredBytes)
            #expect(late.retiredBytes >= 35 * keys.count * valueSize, "retired \(late.retiredBytes)")
            #expect(late.fileSize > early.fileSize, "pinned space should force growth: \(early.fileSize) -> \(late.fileSize)")

            holder.send(SIGKILL)
            #expect(holder.finish().status == -SIGKILL)
            for round in 37...39 { try overwriteAll(round) }
            let reclaimed = try file.statistics()
            // Only the last transaction's replaced blocks are still retired.
            #expect(reclaimed.retiredBytes < late.retiredBytes / 10, "retired \(late.retiredBytes) -> \(reclaimed.retiredBytes)")
            #expect(reclaimed.readerSlotsInUse < slotsWhileHeld, "the dead reader's slot was not reclaimed")
            #expect(reclaimed.freeBytes > 30 * keys.count * valueSize, "free \(reclaimed.freeBytes)")
            // The freed space is reused: many more overwrites do not grow the file.
            for round in 40...79 { try overwriteAll(round) }
            let after = try file.statistics()
            #expect(after.fileSize == reclaimed.fileSize, "the file kept growing: \(reclaimed.fileSize) -> \(after.fileSize)")
            #expect(after.retiredBytes < late.retiredBytes / 10)
            #expect(try file.verify() == keys.count)
            #expect(try file.value(forKey: keys[0]) == [UInt8](repeating: 79, count: valueSize))
        }
    }
}
