import Testing
import WhyCache
import WhyCacheTestSupport

/// ``StateSnapshot/forEachChange(since:_:)``: the keys whose values differ
/// between two states of one file, in key order, exactly as two dictionaries
/// differ — whatever the trees' shapes (splits, merges, terminals, leaves
/// turned into nodes and back).
@Suite struct StateSnapshotChangeTests {
    /// The changes reported between `older` and `newer`, in the order reported.
    private func changes(from older: StateSnapshot, to newer: StateSnapshot) throws -> [(key: [UInt8], value: [UInt8]?)] {
        var result: [(key: [UInt8], value: [UInt8]?)] = []
        let complete = try newer.forEachChange(since: older) { key, value in
            result.append((Array(key), value.map { Array($0) }))
            return true
        }
        #expect(complete)
        return result
    }

    /// What the changes from `old` to `new` must be: every key whose value
    /// differs, with its new value or nil, in ascending key order.
    private func expected(from old: [[UInt8]: [UInt8]], to new: [[UInt8]: [UInt8]]) -> [(key: [UInt8], value: [UInt8]?)] {
        Set(old.keys).union(new.keys)
            .filter { old[$0] != new[$0] }
            .sorted { $0.lexicographicallyPrecedes($1) }
            .map { ($0, new[$0]) }
    }

    private func check(_ reported: [(key: [UInt8], value: [UInt8]?)], _ wanted: [(key: [UInt8], value: [UInt8]?)], _ comment: Comment) {
        #expect(reported.count == wanted.count, comment)
        for (got, want) in zip(reported, wanted) where got.key != want.key || got.value != want.value {
            Issue.record("\(comment): reported \(got), expected \(want)")
            return
        }
    }

    /// A key from a small alphabet and short lengths, so that keys often
    /// are prefixes of one another (terminals) and nodes split and merge.
    private func randomKey(_ generator: inout some RandomNumberGenerator) -> [UInt8] {
        let shapes: [[UInt8]] = [Array("user:".utf8), Array("u".utf8), Array("user:1".utf8), []]
        var key = shapes.randomElement(using: &generator)!
        for _ in 0..<Int.random(in: 0...4, using: &generator) { key.append(UInt8.random(in: 48...52, using: &generator)) }
        if key.isEmpty { key = [UInt8.random(in: 0...255, using: &generator)] }
        return key
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func changesAreThoseOfTwoDictionaries(seed: UInt64) throws {
        try withTemporaryDirectory { directory in
            var generator = SeededGenerator(seed: seed)
            let file = try SharedStateFile.open(at: directory + "/state")
            var model: [[UInt8]: [UInt8]] = [:]
            var older = try file.snapshot()
            var olderModel = model
            for round in 0..<12 {
                // Rounds of very different sizes: a few changes, or many.
                let operations = round % 3 == 0 ? Int.random(in: 200...600, using: &generator) : Int.random(in: 1...8, using: &generator)
                try file.write { transaction in
                    for _ in 0..<operations {
                        let key = randomKey(&generator)
                        switch Int.random(in: 0..<10, using: &generator) {
                        case 0..<3:
                            _ = try transaction.removeValue(forKey: key)
                            model[key] = nil
                        case 3:
                            // The same value again: a new leaf, no change.
                            if let value = model[key] { try transaction.setValue(value, forKey: key) }
                        default:
                            let value = Array("\(round).\(Int.random(in: 0..<3, using: &generator))".utf8)
                            try transaction.setValue(value, forKey: key)
                            model[key] = value
                        }
                    }
                    try transaction.setUpdateID(UInt64(round + 1))
                }
                let newer = try file.snapshot()
                check(try changes(from: older, to: newer), expected(from: olderModel, to: model), "seed \(seed) round \(round)")
                // Backwards too: the same comparison with the roles exchanged.
                check(try changes(from: newer, to: older), expected(from: model, to: olderModel), "seed \(seed) round \(round) backwards")
                // Against itself: nothing.
                #expect(try changes(from: newer, to: newer).isEmpty)
                // Keep the older state sometimes, so that changes span several commits.
                if round % 2 == 1 {
                    older.close()
                    older = newer
                    olderModel = model
                }
            }
            older.close()
        }
    }

    /// A root shared by every key (a long compressed prefix) that splits
    /// when a key outside it arrives, and merges back when it leaves.
    @Test func aSplitAndAMergedRootAreCompared() throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state")
            let keys = (0..<300).map { Array("/api/v1/users/\($0)/settings".utf8) }
            try file.write { transaction in
                for key in keys { try transaction.setValue(key, forKey: key) }
            }
            let shared = try file.snapshot()
            try file.write { transaction in try transaction.setValue(Array("x".utf8), forKey: Array("/health".utf8)) }
            let split = try file.snapshot()
            var reported = try changes(from: shared, to: split)
            #expect(reported.map(\.key) == [Array("/health".utf8)] && reported.first?.value == Array("x".utf8))
            try file.write { transaction in
                _ = try transaction.removeValue(forKey: Array("/health".utf8))
                try transaction.setValue(Array("changed".utf8), forKey: keys[7])
            }
            let merged = try file.snapshot()
            reported = try changes(from: split, to: merged)
            #expect(reported.map(\.key) == [Array("/api/v1/users/7/settings".utf8), Array("/health".utf8)])
            #expect(reported.map(\.value) == [Array("changed".utf8), nil])
            #expect(try changes(from: shared, to: merged).map(\.key) == [Array("/api/v1/users/7/settings".utf8)])
            // Stopped after the first change: one visit, and false returned.
            var visits = 0
            let complete = try merged.forEachChange(since: split) { _, _ in
                visits += 1
                return false
            }
            #expect(!complete && visits == 1)
        }
    }

    @Test func snapshotsOfTwoFilesOrClosedOnesAreRefused() throws {
        try withTemporaryDirectory { directory in
            let first = try SharedStateFile.open(at: directory + "/first")
            let second = try SharedStateFile.open(at: directory + "/second")
            let a = try first.snapshot()
            let b = try second.snapshot()
            #expect(throws: StateFileError.self) { try b.forEachChange(since: a) { _, _ in true } }
            let c = try first.snapshot()
            c.close()
            #expect(throws: StateFileError.closed(path: directory + "/first")) { try a.forEachChange(since: c) { _, _ in true } }
        }
    }
}
