import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// A writer process SIGKILLed at random moments, again and again on one file:
/// after each kill the file opens, verifies, and holds exactly the state
/// after some script transaction — the last one the writer reported, or the
/// one it was committing — and the next writer recovers the allocator state
/// the dead one left behind.
@Suite(.serialized) struct SharedStateCrashTests {
    static let rounds = 60
    static let seed: UInt64 = 0xC0FF_EE00_5EED

    @Test func writerKilledAtRandomMomentsLeavesTheStateBeforeOrAfterItsTransaction() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            var generator = SeededGenerator(seed: Self.seed)
            // The script's state through `modelUpdate`, advanced incrementally.
            var model: [[UInt8]: [UInt8]] = [:]
            var modelUpdate: UInt64 = 0
            var lastUpdate: UInt64 = 0
            var sizeAfterFirstRound = 0
            var killedMidTransaction = 0

            for round in 0..<Self.rounds {
                let writer = try HelperProcess(["state-script-writer", path, "0", "0"])
                let ready = writer.readLine { $0.hasPrefix("ready ") }
                #expect(ready == "ready \(lastUpdate)", "round \(round): the writer started from \(ready ?? "nothing")")
                // Let it commit a few transactions, then kill it at a random moment.
                var acknowledged: UInt64 = 0
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    guard let line = writer.readLine(until: { $0.hasPrefix("committed ") }) else { break }
                    acknowledged = max(acknowledged, UInt64(line.dropFirst("committed ".count)) ?? 0)
                }
                #expect(acknowledged > lastUpdate, "round \(round): the writer committed nothing")
                usleep(UInt32.random(in: 0...15_000, using: &generator))
                writer.send(SIGKILL)
                let result = writer.finish()
                #expect(result.status == -SIGKILL, "round \(round): the writer ended by itself: \(result.errors)")
                // Every line it printed was printed before the kill.
                for line in result.lines where line.hasPrefix("committed ") {
                    acknowledged = max(acknowledged, UInt64(line.dropFirst("committed ".count)) ?? 0)
                }

                let file = try SharedStateFile.open(at: path)
                let keyCount = try file.verify()
                let snapshot = try file.snapshot()
                let update = snapshot.updateID
                #expect(update >= acknowledged, "round \(round): a reported commit was lost (\(update) < \(acknowledged))")
                #expect(update <= acknowledged + 1, "round \(round): state \(update) is beyond the transaction in flight")
                if update == acknowledged + 1 { killedMidTransaction += 1 }
                while modelUpdate < update {
                    modelUpdate += 1
                    for operation in StateScript.operations(modelUpdate) {
                        switch operation {
                        case .set(let key, let value): model[key] = value
                        case .remove(let key): model[key] = nil
                        }
                    }
                }
                let entries = try snapshot.entries()
                #expect(entries.count == model.count && keyCount == model.count, "round \(round): key count")
                var mismatches = 0
                for entry in entries where model[entry.key] != entry.value { mismatches += 1 }
                #expect(mismatches == 0, "round \(round): \(mismatches) keys differ from the script state at \(update)")
                snapshot.close()
                lastUpdate = update
                if round == 0 { sizeAfterFirstRound = try file.statistics().fileSize }
            }
            // The incremental replay agrees with the script's pure function.
            #expect(model == StateScript.state(through: lastUpdate))
            // Killed writers do not leak space: the crash rounds fit in a small
            // multiple of the first round's file (one growth step is 4 MiB,
            // the live state is about 1 MB).
            let file = try SharedStateFile.open(at: path)
            let sizeAfterCrashes = try file.statistics().fileSize
            #expect(sizeAfterCrashes <= 3 * sizeAfterFirstRound, "\(sizeAfterFirstRound) -> \(sizeAfterCrashes)")

            // After the crashes, clean writers reuse space: a second run of 300
            // transactions does not grow the file beyond the first one.
            let first = try HelperProcess.run(["state-script-writer", path, "0", "300"])
            #expect(first.last == "committed \(lastUpdate + 300)")
            let sizeAfterFirstRun = try file.statistics().fileSize
            let second = try HelperProcess.run(["state-script-writer", path, "0", "300"])
            #expect(second.last == "committed \(lastUpdate + 600)")
            let statistics = try file.statistics()
            #expect(statistics.fileSize == sizeAfterFirstRun, "the file kept growing: \(sizeAfterFirstRun) -> \(statistics.fileSize)")
            #expect(try file.verify() == StateScript.state(through: lastUpdate + 600).count)
            print("SharedStateCrashTests: \(Self.rounds) kills, \(killedMidTransaction) with the transaction in flight published, update id \(lastUpdate), file \(sizeAfterFirstRound) -> \(sizeAfterCrashes) -> \(statistics.fileSize) bytes")
        }
    }
}
