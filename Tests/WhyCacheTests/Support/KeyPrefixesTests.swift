import Testing
@testable import WhyCache

/// The sets of keys named by prefixes (snapshots' and subscribed files'):
/// one canonical spelling per set, membership by binary search agreeing with
/// the definition, and intersections.
@Suite struct KeyPrefixesTests {
    private func prefixes(_ texts: [String]) -> [[UInt8]] { texts.map { Array($0.utf8) } }

    private func contains(_ set: KeyPrefixes, _ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { set.contains($0) }
    }

    @Test func theCanonicalFormIsSortedWithoutDuplicatesOrCoveredPrefixes() {
        #expect(KeyPrefixes.canonical(prefixes(["b", "a/1", "a", "b", "ab", "c/x", "c/"])) == prefixes(["a", "b", "c/"]))
        #expect(KeyPrefixes.canonical(prefixes(["users/", "user"])) == prefixes(["user"]))
        #expect(KeyPrefixes.canonical(prefixes(["x", ""])) == [])
        #expect(KeyPrefixes.canonical([]) == [])
        // Unsigned byte order: 0xFF sorts after every ASCII byte.
        #expect(KeyPrefixes.canonical([[0xFF], [0x01], [0x7F]]) == [[0x01], [0x7F], [0xFF]])
        // Two spellings of one set are equal.
        #expect(KeyPrefixes(canonicalizing: prefixes(["a", "a/b"])) == KeyPrefixes(canonicalizing: prefixes(["a"])))
    }

    /// Membership by binary search agrees with "starts with one of the
    /// prefixes" for every key up to three bytes over a small alphabet,
    /// including the keys equal to, shorter than and between the prefixes.
    @Test(arguments: [[], ["a"], ["ab", "b"], ["a", "ba", "bb", "c"], ["", "b"], ["aa", "ab", "ac", "b", "cab"]])
    func membershipAgreesWithTheDefinition(texts: [String]) {
        let list = prefixes(texts)
        let set = KeyPrefixes(canonicalizing: list)
        #expect(set.isEverything == (list.isEmpty || list.contains([])))
        let alphabet: [UInt8] = Array("abc".utf8) + [0x00, 0xFF]
        var keys: [[UInt8]] = alphabet.map { [$0] }
        for _ in 0..<2 { keys += keys.flatMap { key in alphabet.map { key + [$0] } } }
        for key in Set(keys) {
            let expected = list.isEmpty || list.contains { key.starts(with: $0) }
            #expect(contains(set, key) == expected, "key \(key)")
        }
    }

    @Test func intersections() {
        let all = KeyPrefixes.everything
        let users = KeyPrefixes(canonicalizing: prefixes(["users/", "groups/"]))
        #expect(all.intersection(users) == users)
        #expect(users.intersection(all) == users)
        #expect(users.intersection(KeyPrefixes(canonicalizing: prefixes(["users/7", "items/"])))
            == KeyPrefixes(canonicalizing: prefixes(["users/7"])))
        #expect(users.intersection(KeyPrefixes(canonicalizing: prefixes(["u"]))) == KeyPrefixes(canonicalizing: prefixes(["users/"])))
        #expect(users.intersection(KeyPrefixes(canonicalizing: prefixes(["items/"]))) == nil)
    }

    @Test func prefixLengthsAndDescriptions() {
        #expect(KeyPrefixes.lengthProblem(WhyCacheLimits.maximumKeyLength) == nil)
        #expect(KeyPrefixes.lengthProblem(WhyCacheLimits.maximumKeyLength + 1)?.contains("1025 bytes") == true)
        #expect(KeyPrefixes.describe([]) == "every key")
        #expect(KeyPrefixes.describe(prefixes(["a/"])).hasPrefix("the keys under "))
    }

    /// The one key order: unsigned bytes, a prefix before its extensions.
    @Test func theKeyOrder() {
        func order(_ a: [UInt8], _ b: [UInt8]) -> Int { a.withUnsafeBytes { compare($0, b) }.signum() }
        #expect(order([], []) == 0)
        #expect(order([], [0]) == -1)
        #expect(order([1, 2], [1, 2, 0]) == -1)
        #expect(order([0x80], [0x7F, 0xFF]) == 1)
        #expect(order([5, 6], [5, 6]) == 0)
    }
}
