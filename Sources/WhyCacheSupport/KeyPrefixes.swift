import Glibc

/// Lexicographic comparison of unsigned byte strings: negative, zero or
/// positive. The one order of keys: bytes compare as unsigned numbers, and
/// a key sorts before every longer key it is a prefix of.
package func compare(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Int {
    b.withUnsafeBytes { b in compare(a, b) }
}

/// The same order of two borrowed buffers.
package func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let shared = min(a.count, b.count)
    if shared > 0 {
        let order = memcmp(a.baseAddress!, b.baseAddress!, shared)
        if order != 0 { return Int(order) }
    }
    return a.count - b.count
}

/// A set of keys named by prefixes: every key that starts with one of them,
/// or every key when the list is empty. The keys a snapshot holds
/// (docs/FORMAT.md section 6.2) and the keys a subscribed state file keeps
/// (section 1.2).
///
/// Invariant: ``prefixes`` is canonical (``canonical(_:)``) — sorted, and no
/// prefix starts another — so one set of keys has one spelling, and the
/// prefixes' key ranges are disjoint and ascend in list order.
package struct KeyPrefixes: Sendable, Hashable {
    /// The prefixes in canonical form; empty means every key.
    package let prefixes: [[UInt8]]
    /// The prefixes one after the other, so that ``contains(_:)`` reads one
    /// buffer instead of an array of arrays.
    private let bytes: [UInt8]
    /// `ends[i]` is the end of prefix `i` in `bytes`.
    private let ends: [Int]

    /// Every key.
    package static let everything = KeyPrefixes(canonicalizing: [])

    /// The set named by `prefixes`, in any order and with duplicates.
    package init(canonicalizing prefixes: [[UInt8]]) {
        self.prefixes = Self.canonical(prefixes)
        self.bytes = self.prefixes.flatMap { $0 }
        var end = 0
        self.ends = self.prefixes.map { prefix in
            end += prefix.count
            return end
        }
    }

    /// Whether the set is every key.
    package var isEverything: Bool { prefixes.isEmpty }

    /// The canonical form of `prefixes`: sorted, without duplicates and
    /// without a prefix that another one of the list starts with (it adds
    /// no key); empty when one of them is empty, which covers every key.
    ///
    /// The ranges of the canonical prefixes are disjoint and ascending: two
    /// sorted prefixes neither of which starts the other first differ at a
    /// byte inside both, so every key under the first sorts before every key
    /// under the second.
    package static func canonical(_ prefixes: [[UInt8]]) -> [[UInt8]] {
        if prefixes.contains(where: \.isEmpty) { return [] }
        var result: [[UInt8]] = []
        for prefix in prefixes.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            // Sorted, a prefix comes right before the strings it starts, so
            // only the last one kept can cover this one.
            if let last = result.last, prefix.starts(with: last) { continue }
            result.append(prefix)
        }
        return result
    }

    /// Why `length` is not a valid prefix length, or nil.
    package static func lengthProblem(_ length: Int) -> String? {
        length <= WhyCacheLimits.maximumKeyLength
            ? nil : "a key prefix of \(length) bytes is longer than the longest key (\(WhyCacheLimits.maximumKeyLength) bytes)"
    }

    /// Text naming the keys of a prefix list in messages: "the keys under"
    /// each prefix as `Hex/describe(_:)` names it, or "every key" for an
    /// empty list.
    package static func describe(_ prefixes: [[UInt8]]) -> String {
        prefixes.isEmpty ? "every key" : "the keys under " + prefixes.map { Hex.describe($0) }.joined(separator: ", ")
    }

    /// Whether `key` starts with `prefix`.
    package static func key(_ key: UnsafeRawBufferPointer, startsWith prefix: UnsafeRawBufferPointer) -> Bool {
        key.count >= prefix.count && compare(UnsafeRawBufferPointer(rebasing: key[..<prefix.count]), prefix) == 0
    }

    /// Whether `key` is in the set: a binary search over the prefixes, on
    /// the borrowed bytes, without allocating.
    ///
    /// Only the last prefix that sorts at or before `key` can start it: a
    /// later one sorts after `key`, and an earlier prefix `p` that starts
    /// `key` would, being at or before the later `q <= key`, start `q` too,
    /// which a canonical list excludes.
    package func contains(_ key: UnsafeRawBufferPointer) -> Bool {
        if ends.isEmpty { return true }
        return bytes.withUnsafeBytes { bytes in
            func prefix(_ index: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]])
            }
            var low = 0
            var high = ends.count
            while low < high {
                let middle = (low + high) / 2
                if compare(key, prefix(middle)) >= 0 { low = middle + 1 } else { high = middle }
            }
            return low > 0 && Self.key(key, startsWith: prefix(low - 1))
        }
    }

    /// The keys in both sets, or nil when no key is (a canonical list
    /// cannot name the empty set: an empty list is every key).
    package func intersection(_ other: KeyPrefixes) -> KeyPrefixes? {
        if isEverything { return other }
        if other.isEverything { return self }
        var common: [[UInt8]] = []
        for a in prefixes {
            for b in other.prefixes {
                // Two prefixes share keys only when one starts the other;
                // then the shared keys are those under the longer one.
                if a.starts(with: b) {
                    common.append(a)
                } else if b.starts(with: a) {
                    common.append(b)
                }
            }
        }
        return common.isEmpty ? nil : KeyPrefixes(canonicalizing: common)
    }
}
