import Testing
import WhyCache
import WhyCacheState
import WhyCacheTestSupport

/// A seeded random workload checked operation by operation against a plain
/// dictionary and sorted keys.
@Suite struct SharedStateModelTests {
    /// Keys drawn from a small alphabet so that prefixes, shared paths and
    /// node splits and merges happen constantly; some long, some binary.
    static func randomKey(_ random: inout SeededGenerator) -> [UInt8] {
        let alphabet: [UInt8] = [0x00, 0x01, 0x61, 0x62, 0x63, 0x7F, 0x80, 0xFE, 0xFF]
        switch random.next() % 20 {
        case 0: return [UInt8](repeating: alphabet[Int(random.next() % 9)], count: 900 + Int(random.next() % 125))
        case 1: return (0..<Int(1 + random.next() % 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        default: return (0..<Int(1 + random.next() % 6)).map { _ in alphabet[Int(random.next() % 9)] }
        }
    }

    /// With `announcesKeys`, every key is announced to the transaction
    /// (`prefetchPath(forKeyBytes:)`) eight operations before it is used,
    /// and now and then a key that is never used, empty or too long: the
    /// walks toward them read blocks that the operations in between free
    /// and reuse, and must change no result.
    @Test(arguments: [1 as UInt64, 2, 3, 4], [false, true])
    func randomOperationsMatchADictionary(seed: UInt64, announcesKeys: Bool) throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state")
            var random = SeededGenerator(seed: seed)
            var model: [[UInt8]: [UInt8]] = [:]
            var transaction = try file.beginWrite()
            var pending = model
            var upcoming = (0..<WriteTransaction.pathPrefetchDistance).map { _ in Self.randomKey(&random) }
            for step in 0..<25_000 {
                let key = upcoming.removeFirst()
                upcoming.append(Self.randomKey(&random))
                if announcesKeys {
                    upcoming.last!.withUnsafeBytes { transaction.prefetchPath(forKeyBytes: $0) }
                    if random.next() % 16 == 0 {
                        let stray: [UInt8] =
                            switch random.next() % 3 {
                            case 0: []
                            case 1: [UInt8](repeating: 0x61, count: WhyCacheLimits.maximumKeyLength + 1)
                            default: Self.randomKey(&random)
                            }
                        stray.withUnsafeBytes { transaction.prefetchPath(forKeyBytes: $0) }
                    }
                }
                switch random.next() % 10 {
                case 0...4:
                    let length = random.next() % 50 == 0 ? Int(random.next() % 5000) : Int(random.next() % 40)
                    let value = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    try transaction.setValue(value, forKey: key)
                    pending[key] = value
                case 5...7:
                    let removed = try transaction.removeValue(forKey: key)
                    #expect(removed == (pending.removeValue(forKey: key) != nil))
                case 8:
                    #expect(try transaction.value(forKey: key) == pending[key])
                    #expect(try file.value(forKey: key) == model[key], "readers must not see uncommitted changes")
                default:
                    if random.next() % 3 == 0 {
                        transaction.abandon()
                        pending = model
                    } else {
                        try transaction.commit()
                        model = pending
                    }
                    transaction = try file.beginWrite()
                    if step % 7 == 0 { try compare(file, model) }
                }
            }
            try transaction.commit()
            model = pending
            try compare(file, model)
            #expect(try file.verify() == model.count)
        }
    }

    private func compare(_ file: SharedStateFile, _ model: [[UInt8]: [UInt8]]) throws {
        let snapshot = try file.snapshot()
        defer { snapshot.close() }
        #expect(snapshot.count == model.count)
        let expected = model.keys.sorted { $0.lexicographicallyPrecedes($1) }
        let entries = try snapshot.entries()
        #expect(entries.map(\.key) == expected)
        for entry in entries where model[entry.key] != entry.value {
            Issue.record("value mismatch for key \(entry.key)")
        }
        // A prefix and a range, against the model.
        let prefix = expected.first.map { Array($0.prefix(1)) } ?? [0x61]
        #expect(try snapshot.keys(in: .prefix(prefix)) == expected.filter { $0.starts(with: prefix) })
        let range = KeyRange(from: [0x61], upTo: [0x63, 0x00])
        #expect(try snapshot.keys(in: range) == expected.filter { range.contains($0) })
    }
}
