import Testing
@testable import WhyCache
@testable import WhyCacheState

/// The copy-on-write tree writer, driven directly: every sequence of sets
/// and removes leaves a tree that reads as a dictionary model of it and
/// keeps the structural invariants (`TrieVerifier`), through the growth of
/// sparse nodes into dense ones and back; and the tree of the last commit
/// is never changed by it.
@Suite struct TrieWriterTests {
    /// A deterministic generator (SplitMix64), so that a failure repeats.
    private struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Expects the tree under `writer.root` to hold exactly `model`, with
    /// its invariants and key count.
    private func expectTree(_ writer: TrieWriter, equals model: [[UInt8]: [UInt8]], probes: [[UInt8]]) throws {
        let reader = TrieReader(file: writer.allocator.file, heapEnd: writer.allocator.bump)
        #expect(try TrieVerifier(reader: reader).verify(root: writer.root, keyCount: writer.keyCount) == model.count)
        for key in probes {
            let found = try key.withUnsafeBytes { key in try reader.lookup(key, root: writer.root).map { Array($0) } }
            #expect(found == model[key], "key \(key)")
        }
    }

    private func set(_ writer: inout TrieWriter, _ key: [UInt8], _ value: [UInt8]) throws {
        try key.withUnsafeBytes { key in
            try value.withUnsafeBytes { value in try writer.set(key, value) }
        }
    }

    /// Keys sharing prefixes of every length (so that leaves split and
    /// nodes merge), one node fanning out to 256 children (sparse to dense
    /// and back), values of many sizes (several block classes).
    @Test(arguments: [1, 2, 3])
    func randomSetsAndRemovesReadAsTheModel(seed: UInt64) throws {
        var generator = Generator(state: seed)
        var keys: [[UInt8]] = (0..<256).map { [0x61, UInt8($0)] }
        keys += (0..<300).map { Array("user/\($0)".utf8) }
        keys += (0..<40).map { Array(String(repeating: "p", count: $0 + 1).utf8) }
        try AllocatorFixture.withAllocator { allocator, _, commit in
            var writer = TrieWriter(allocator: allocator, root: commit.root, keyCount: commit.keyCount)
            var model: [[UInt8]: [UInt8]] = [Array("k".utf8): Array("before".utf8)]
            for round in 0..<6 {
                for _ in 0..<1_500 {
                    let key = keys.randomElement(using: &generator)!
                    // Rounds alternate between growing and shrinking the tree.
                    if generator.next() % 10 < (round % 2 == 0 ? 8 : 2) {
                        let value = [UInt8](repeating: UInt8(truncatingIfNeeded: generator.next()), count: Int(generator.next() % 600))
                        try set(&writer, key, value)
                        model[key] = value
                    } else {
                        let removed = try key.withUnsafeBytes { key in try writer.remove(key) }
                        #expect(removed == (model.removeValue(forKey: key) != nil))
                    }
                }
                try expectTree(writer, equals: model, probes: keys + [Array("k".utf8), [0x61], Array("user/".utf8)])
            }
        }
    }

    /// The tree the last commit published reads the same after the writer
    /// changed, added and removed keys: nodes it reaches are copied, never
    /// written in place.
    @Test func theCommittedTreeIsNeverWrittenInPlace() throws {
        try AllocatorFixture.withAllocator { allocator, file, commit in
            var writer = TrieWriter(allocator: allocator, root: commit.root, keyCount: commit.keyCount)
            for index in 0..<100 { try set(&writer, Array("key/\(index)".utf8), Array("new".utf8)) }
            try set(&writer, Array("k".utf8), Array("changed".utf8))
            let committed = TrieReader(file: file, heapEnd: Int(commit.heapEnd))
            #expect(try TrieVerifier(reader: committed).verify(root: commit.root, keyCount: commit.keyCount) == 1)
            let old = try Array("k".utf8).withUnsafeBytes { key in
                try committed.lookup(key, root: commit.root).map { Array($0) }
            }
            #expect(old == Array("before".utf8))
            _ = try Array("k".utf8).withUnsafeBytes { key in try writer.remove(key) }
            #expect(try TrieVerifier(reader: committed).verify(root: commit.root, keyCount: commit.keyCount) == 1)
            #expect(writer.keyCount == 100)
        }
    }
}
