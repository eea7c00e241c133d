import Foundation
import Testing
import WhyCache

/// Single-process behaviour of the shared-state file: every operation and edge.
@Suite struct SharedStateFileTests {
    private func withFile<R>(_ body: (SharedStateFile, String) throws -> R) throws -> R {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            return try body(try SharedStateFile.open(at: path), path)
        }
    }

    @Test func emptyFileHasNothing() throws {
        try withFile { file, _ in
            #expect(try file.updateID() == 0)
            #expect(try file.value(forKey: bytes("missing")) == nil)
            #expect(try file.contains(bytes("missing")) == false)
            let snapshot = try file.snapshot()
            #expect(snapshot.count == 0)
            #expect(try snapshot.entries().isEmpty)
            #expect(try snapshot.keys(in: .prefix(bytes("a"))).isEmpty)
            #expect(try file.verify() == 0)
        }
    }

    /// A state file in a missing directory: the error names the path the
    /// caller gave, not the temporary name the file is built under.
    @Test func aMissingDirectoryIsReportedWithTheCallersPath() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/missing/x.whycache"
            #expect(throws: StateFileError.systemCallFailed(call: "open", path: path, errno: ENOENT)) {
                try SharedStateFile.open(at: path)
            }
            #expect(throws: CacheError.stateFile(.systemCallFailed(call: "open", path: path, errno: ENOENT))) {
                try SharedCache(statePath: path, datastore: try FileDatastore(directory: directory + "/log"))
            }
        }
    }

    @Test func setGetOverwriteRemove() throws {
        try withFile { file, _ in
            try file.write { transaction in
                try transaction.setValue(bytes("one"), forKey: bytes("a"))
                try transaction.setValue(bytes("two"), forKey: bytes("b"))
                try transaction.setUpdateID(5)
            }
            #expect(try file.value(forKey: bytes("a")) == bytes("one"))
            #expect(try file.value(forKey: bytes("b")) == bytes("two"))
            #expect(try file.updateID() == 5)
            try file.write { transaction in
                try transaction.setValue(bytes("uno"), forKey: bytes("a"))
                #expect(try transaction.removeValue(forKey: bytes("b")))
                #expect(try !transaction.removeValue(forKey: bytes("zzz")))
                #expect(try transaction.value(forKey: bytes("a")) == bytes("uno"))
                #expect(transaction.count == 1)
            }
            #expect(try file.value(forKey: bytes("a")) == bytes("uno"))
            #expect(try file.value(forKey: bytes("b")) == nil)
            #expect(try file.verify() == 1)
        }
    }

    @Test func binaryKeysPrefixesAndLengthExtremes() throws {
        try withFile { file, _ in
            let keys: [[UInt8]] = [
                [0x00], [0xFF], [0x00, 0x00], [0x00, 0xFF], [0xFF, 0x00], [0xFF, 0xFF, 0xFF],
                bytes("abc"), bytes("ab"), bytes("a"), bytes("abcd"), bytes("abd"),
                [UInt8](repeating: 0x41, count: 1024), [UInt8](repeating: 0x41, count: 1023),
                [UInt8](repeating: 0x00, count: 1024), [UInt8](repeating: 0xFF, count: 1024),
            ]
            try file.write { transaction in
                for (index, key) in keys.enumerated() {
                    try transaction.setValue(index % 3 == 0 ? [] : Array(repeating: UInt8(index), count: index), forKey: key)
                }
            }
            for (index, key) in keys.enumerated() {
                #expect(try file.value(forKey: key) == (index % 3 == 0 ? [] : Array(repeating: UInt8(index), count: index)))
            }
            let sorted = keys.sorted { $0.lexicographicallyPrecedes($1) }
            #expect(try file.snapshot().keys() == sorted)
            #expect(try file.verify() == keys.count)
            // Remove the short keys that are prefixes of others: path compression must merge nodes.
            try file.write { transaction in
                for key in [bytes("a"), bytes("ab"), [0x00], [0xFF]] {
                    let removed = try transaction.removeValue(forKey: key)
                    #expect(removed)
                }
            }
            #expect(try file.value(forKey: bytes("abc")) != nil)
            #expect(try file.value(forKey: bytes("ab")) == nil)
            #expect(try file.verify() == keys.count - 4)
        }
    }

    @Test func invalidLengthsAreTypedErrorsAndChangeNothing() throws {
        try withFile { file, _ in
            try file.write { try $0.setValue(bytes("v"), forKey: bytes("k")) }
            let transaction = try file.beginWrite()
            #expect(throws: StateFileError.invalidKeyLength(0)) { try transaction.setValue(bytes("v"), forKey: []) }
            #expect(throws: StateFileError.invalidKeyLength(1025)) {
                try transaction.setValue(bytes("v"), forKey: [UInt8](repeating: 1, count: 1025))
            }
            let tooLong = WhyCacheLimits.maximumValueLength + 1
            #expect(throws: StateFileError.valueTooLong(tooLong)) {
                try transaction.setValue([UInt8](repeating: 0, count: tooLong), forKey: bytes("k"))
            }
            // Argument errors do not invalidate the transaction.
            try transaction.setValue(bytes("w"), forKey: bytes("k2"))
            try transaction.commit()
            #expect(throws: StateFileError.invalidKeyLength(0)) { try file.value(forKey: []) }
            #expect(try file.value(forKey: bytes("k")) == bytes("v"))
            #expect(try file.value(forKey: bytes("k2")) == bytes("w"))
        }
    }

    @Test func largeValuesRoundTrip() throws {
        try withFile { file, _ in
            let large = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try file.write { try $0.setValue(large, forKey: bytes("large")) }
            #expect(try file.value(forKey: bytes("large")) == large)
            let length = try file.withValue(forKey: bytes("large")) { $0?.count }
            #expect(length == large.count)
            try file.write { try $0.setValue(bytes("small"), forKey: bytes("large")) }
            #expect(try file.value(forKey: bytes("large")) == bytes("small"))
        }
    }

    /// A leaf stores its suffix and value lengths as varints, so a header is
    /// 2 to 6 bytes long. Lengths on both sides of every varint boundary
    /// round-trip, also when a value replaced inside one transaction changes
    /// the header's length while the leaf keeps its block (the suffix then
    /// moves within the block before the new header is written).
    @Test func leafLengthsAcrossVarintBoundaries() throws {
        try withFile { file, _ in
            let valueLengths = [0, 1, 127, 128, 129, 16_383, 16_384, 16_385, 2_097_151, 2_097_152]
            // Suffixes of 0, 126, 127 and 1,022 bytes below a shared first byte.
            let keys: [[UInt8]] = [
                bytes("k"), bytes("k") + [UInt8](repeating: 0x61, count: 127), bytes("k") + [UInt8](repeating: 0x62, count: 128),
                bytes("k") + [UInt8](repeating: 0x63, count: 1023),
            ]
            func value(_ length: Int, _ seed: Int) -> [UInt8] { (0..<length).map { UInt8(truncatingIfNeeded: $0 &+ seed) } }
            for (round, length) in valueLengths.enumerated() {
                try file.write { transaction in
                    for (index, key) in keys.enumerated() {
                        // Several values per key in one transaction: the later
                        // ones replace the leaf the transaction just wrote.
                        for step in [125, 126, 127, 128, length] {
                            try transaction.setValue(value(step, index + round), forKey: key)
                        }
                    }
                }
                for (index, key) in keys.enumerated() {
                    #expect(try file.value(forKey: key) == value(length, index + round), "length \(length), key \(index)")
                }
                #expect(try file.snapshot().keys() == keys)
                #expect(try file.verify() == keys.count)
            }
        }
    }

    @Test func abandonedAndReleasedTransactionsChangeNothing() throws {
        try withFile { file, _ in
            try file.write { try $0.setValue(bytes("kept"), forKey: bytes("k")) }
            let transaction = try file.beginWrite()
            for index in 0..<1000 { try transaction.setValue(bytes("x\(index)"), forKey: bytes("k\(index)")) }
            transaction.abandon()
            #expect(throws: StateFileError.transactionFinished) { try transaction.commit() }
            do {
                let dropped = try file.beginWrite()
                try dropped.setValue(bytes("gone"), forKey: bytes("k"))
            }
            struct Failure: Error {}
            #expect(throws: Failure.self) {
                try file.write { transaction in
                    try transaction.setValue(bytes("gone"), forKey: bytes("k"))
                    throw Failure()
                }
            }
            #expect(try file.value(forKey: bytes("k")) == bytes("kept"))
            #expect(try file.snapshot().count == 1)
            #expect(try file.verify() == 1)
            // The writer lock was released each time: a new transaction starts at once.
            let next = try #require(try file.tryBeginWrite())
            next.abandon()
        }
    }

    @Test func updateIDNeverMovesBackwards() throws {
        try withFile { file, _ in
            try file.write { try $0.setUpdateID(10) }
            let transaction = try file.beginWrite()
            #expect(throws: StateFileError.updateIDMovedBackwards(current: 10, proposed: 9)) { try transaction.setUpdateID(9) }
            try transaction.setUpdateID(10)
            try transaction.commit()
            #expect(try file.updateID() == 10)
        }
    }

    @Test func onlyOneWriterAtATime() throws {
        try withFile { file, path in
            let other = try SharedStateFile.open(at: path)
            let first = try file.beginWrite()
            #expect(try file.tryBeginWrite() == nil)
            #expect(try other.tryBeginWrite() == nil)
            first.abandon()
            let second = try #require(try other.tryBeginWrite())
            second.abandon()
        }
    }

    /// A writer reuses the descriptor a previous writer of this process gave
    /// back instead of opening one per transaction; a descriptor is lent to
    /// one writer at a time, so the lock still excludes a second writer of
    /// the same file object (a refused try gives its descriptor back, and a
    /// waiting writer gets in once the first one is done).
    @Test func writersReuseTheirLockDescriptorsAndStillExcludeEachOther() throws {
        try withFile { file, _ in
            #expect(file.spareWriterLockDescriptors == 0)
            for index in 1...50 {
                let transaction = try #require(try file.tryBeginWrite())
                try transaction.setValue(bytes("\(index)"), forKey: bytes("k"))
                try transaction.commit()
                try file.write { try $0.setValue(bytes("\(index)"), forKey: bytes("j")) }
                #expect(file.spareWriterLockDescriptors == 1)
            }
            let first = try file.beginWrite()
            #expect(file.spareWriterLockDescriptors == 0)
            #expect(try file.tryBeginWrite() == nil)
            #expect(try file.tryBeginWrite() == nil)
            #expect(file.spareWriterLockDescriptors == 1)
            let waiter = Thread { _ = try? file.write { try $0.setValue(bytes("waited"), forKey: bytes("k")) } }
            waiter.start()
            usleep(100_000)
            #expect(try file.value(forKey: bytes("k")) == bytes("50"))
            first.abandon()
            while !waiter.isFinished { usleep(1_000) }
            #expect(try file.value(forKey: bytes("k")) == bytes("waited"))
            #expect(file.spareWriterLockDescriptors == 2)
        }
    }

    @Test func snapshotsAreIsolatedFromLaterCommits() throws {
        try withFile { file, path in
            try file.write { transaction in
                for index in 0..<100 { try transaction.setValue(bytes("v1"), forKey: bytes("key\(index)")) }
                try transaction.setUpdateID(1)
            }
            let before = try file.snapshot()
            let other = try SharedStateFile.open(at: path)
            let transaction = try other.beginWrite()
            for index in 0..<100 { try transaction.setValue(bytes("v2"), forKey: bytes("key\(index)")) }
            try transaction.setValue(bytes("new"), forKey: bytes("added"))
            try transaction.setUpdateID(2)
            // Not visible before commit, neither through the old snapshot nor fresh reads.
            #expect(try file.value(forKey: bytes("key0")) == bytes("v1"))
            try transaction.commit()
            // Many more commits that recycle space must not disturb the pinned view.
            for round in 3...20 {
                try other.write { transaction in
                    for index in 0..<100 { try transaction.setValue(bytes("v\(round)"), forKey: bytes("key\(index)")) }
                    try transaction.setUpdateID(UInt64(round))
                }
            }
            #expect(before.updateID == 1)
            #expect(try before.value(forKey: bytes("added")) == nil)
            let values = Set(try before.entries().map(\.value))
            #expect(values == [bytes("v1")])
            #expect(before.count == 100)
            before.close()
            #expect(throws: StateFileError.self) { try before.value(forKey: bytes("key0")) }
            #expect(try file.value(forKey: bytes("key0")) == bytes("v20"))
            #expect(try file.updateID() == 20)
        }
    }

    @Test func prefixAndRangeIterationBounds() throws {
        try withFile { file, _ in
            let keys: [[UInt8]] = [
                bytes("a"), bytes("ab"), bytes("abc"), bytes("abd"), bytes("ac"), bytes("b"), [0x61, 0xFF], [0x61, 0xFF, 0xFF], [0x62, 0x00],
            ]
            try file.write { transaction in
                for key in keys { try transaction.setValue(key, forKey: key) }
            }
            let snapshot = try file.snapshot()
            func keysIn(_ range: KeyRange) throws -> [[UInt8]] { try snapshot.keys(in: range) }
            let all = keys.sorted { $0.lexicographicallyPrecedes($1) }
            #expect(try keysIn(.all) == all)
            #expect(try keysIn(.prefix(bytes("ab"))) == [bytes("ab"), bytes("abc"), bytes("abd")])
            #expect(try keysIn(.prefix(bytes("a"))) == all.filter { $0.first == 0x61 })
            #expect(try keysIn(.prefix([0x61, 0xFF])) == [[0x61, 0xFF], [0x61, 0xFF, 0xFF]])
            #expect(try keysIn(.prefix(bytes("zz"))).isEmpty)
            #expect(try keysIn(.prefix([UInt8]())) == all)
            #expect(try keysIn(KeyRange(from: bytes("abc"), upTo: bytes("b"))) == [bytes("abc"), bytes("abd"), bytes("ac"), [0x61, 0xFF], [0x61, 0xFF, 0xFF]])
            #expect(try keysIn(KeyRange(from: bytes("abcc"))) == all.filter { !$0.lexicographicallyPrecedes(bytes("abcc")) })
            #expect(try keysIn(KeyRange(upTo: bytes("ab"))) == [bytes("a")])
            #expect(try keysIn(KeyRange(from: bytes("b"), upTo: bytes("b"))).isEmpty)
            #expect(try keysIn(KeyRange(from: [0x00])) == all)
            // Early stop and the cursor API.
            var visited = 0
            try snapshot.visitEntries { _, _ in
                visited += 1
                return visited < 3
            }
            #expect(visited == 3)
            var cursor = snapshot.makeCursor(in: .prefix(bytes("ab")))
            var collected: [[UInt8]] = []
            while let entry = try cursor.next() {
                #expect(entry.key == entry.value)
                collected.append(entry.key)
            }
            #expect(collected == [bytes("ab"), bytes("abc"), bytes("abd")])
        }
    }

    /// The calls that take a closure throw the layer's error alone when the
    /// closure does not throw (a `do throws(StateFileError)` block compiles
    /// only then), and pass a throwing closure's error through unchanged,
    /// stopping at it.
    @Test func closureCallsAreTypedUnlessTheClosureThrows() throws {
        try withFile { file, _ in
            try file.write { transaction in
                for key in ["a", "b", "c"] { try transaction.setValue(bytes(key), forKey: bytes(key)) }
                try transaction.setUpdateID(1)
            }
            let snapshot = try file.snapshot()
            defer { snapshot.close() }
            var cursor = snapshot.makeCursor()
            do throws(StateFileError) {
                #expect(try file.withValue(forKey: bytes("a")) { $0.map { Array($0) } } == bytes("a"))
                #expect(try snapshot.withValue(forKey: bytes("b")) { $0?.count } == 1)
                var keys: [[UInt8]] = []
                try snapshot.visitEntries { key, _ in keys.append(Array(key)); return true }
                #expect(keys == [bytes("a"), bytes("b"), bytes("c")])
                #expect(try cursor.next { key, _ in Array(key) } == bytes("a"))
                _ = try snapshot.withValue(forKey: [UInt8]()) { $0 }
                Issue.record("an empty key was read")
            } catch {
                #expect(error == .invalidKeyLength(0))
            }

            struct Stop: Error, Equatable { let at: [UInt8] }
            #expect(throws: Stop(at: bytes("a"))) { try file.withValue(forKey: bytes("a")) { throw Stop(at: Array($0!)) } }
            #expect(throws: Stop(at: bytes("b"))) { try snapshot.withValue(forKey: bytes("b")) { throw Stop(at: Array($0!)) } }
            #expect(throws: Stop(at: bytes("b"))) { try cursor.next { key, _ in throw Stop(at: Array(key)) } }
            var visited: [[UInt8]] = []
            #expect(throws: Stop(at: bytes("b"))) {
                try snapshot.visitEntries { key, _ in
                    visited.append(Array(key))
                    if key.elementsEqual(bytes("b")) { throw Stop(at: Array(key)) }
                    return true
                }
            }
            #expect(visited == [bytes("a"), bytes("b")])
        }
    }

    @Test func keyRangeContainsAndPrefixSuccessor() {
        #expect(KeyRange.prefix([0x61, 0xFF]).upperBound == [0x62])
        #expect(KeyRange.prefix([0xFF, 0xFF]).upperBound == nil)
        #expect(KeyRange.prefix([0x61]).contains([0x61, 0x00]))
        #expect(!KeyRange.prefix([0x61]).contains([0x62]))
        #expect(KeyRange.all.contains([0x00]))
    }

    @Test func reopeningFindsEverythingAndRemoveDiscards() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            do {
                let file = try SharedStateFile.open(at: path)
                try file.write { transaction in
                    for index in 0..<500 { try transaction.setValue(bytes("value\(index)"), forKey: bytes("key\(index)")) }
                    try transaction.setUpdateID(42)
                }
            }
            let reopened = try SharedStateFile.open(at: path)
            #expect(try reopened.updateID() == 42)
            #expect(try reopened.value(forKey: bytes("key499")) == bytes("value499"))
            #expect(!reopened.isRetired)
            try SharedStateFile.remove(at: path)
            #expect(reopened.isRetired)
            // The old mapping keeps working; the path is free for a fresh file.
            #expect(try reopened.value(forKey: bytes("key1")) == bytes("value1"))
            var options = SharedStateFile.Options()
            options.createIfMissing = false
            #expect(throws: StateFileError.self) { try SharedStateFile.open(at: path, options: options) }
            #expect(try SharedStateFile.open(at: path).updateID() == 0)
            try SharedStateFile.remove(at: directory + "/never-existed")
        }
    }

    @Test func statisticsDescribeTheFile() throws {
        try withFile { file, _ in
            try file.write { transaction in
                for index in 0..<1000 { try transaction.setValue(bytes("value\(index)"), forKey: bytes("key\(index)")) }
                try transaction.setUpdateID(7)
            }
            let statistics = try file.statistics()
            #expect(statistics.keyCount == 1000)
            #expect(statistics.updateID == 7)
            #expect(statistics.fileSize >= statistics.heapBytes)
            #expect(statistics.readerSlotsInUse >= 1)
            #expect(statistics.readerSlotCount == 1024)
        }
    }

    @Test func spaceFreedByOverwritesIsReused() throws {
        try withFile { file, _ in
            let count = 20_000
            func load(_ version: Int) throws {
                try file.write { transaction in
                    for index in 0..<count {
                        let value = [UInt8](repeating: UInt8(truncatingIfNeeded: version), count: 100)
                        try transaction.setValue(value, forKey: bytes(String(format: "user:%08d", index)))
                    }
                }
            }
            try load(0)
            let afterFirstLoad = try file.statistics().fileSize
            for version in 1...20 {
                // Batches of 1000, like the benchmark's writer.
                for start in stride(from: 0, to: count, by: 1000) {
                    try file.write { transaction in
                        for index in start..<(start + 1000) {
                            let value = [UInt8](repeating: UInt8(truncatingIfNeeded: version), count: 100)
                            try transaction.setValue(value, forKey: bytes(String(format: "user:%08d", index)))
                        }
                    }
                }
            }
            let final = try file.statistics()
            #expect(Double(final.fileSize) <= 1.5 * Double(afterFirstLoad), "grew from \(afterFirstLoad) to \(final.fileSize)")
            #expect(try file.value(forKey: bytes("user:00000007")) == [UInt8](repeating: 20, count: 100))
            #expect(try file.verify() == count)
        }
    }
}
