/// Which keys a snapshot may hold, and in what order: the rules its writer
/// keeps and its reader enforces, defined once for both.
///
/// Invariants of a valid stream (docs/FORMAT.md section 6.3): every key is
/// 1...1024 bytes and every value at most 64 MiB (``/WhyCacheSupport/WhyCacheLimits``); keys
/// are strictly ascending in unsigned byte order, so no key appears twice;
/// and when the header lists prefixes, every key starts with one of them.
/// The prefix list itself is canonical (``KeyPrefixes/canonical(_:)``): a
/// reader rejects any other spelling, so that one set of keys has one header.
struct SnapshotKeyRules {
    /// The snapshot's prefixes, canonical; empty means every key.
    let prefixes: [[UInt8]]
    /// The last key admitted; empty before the first (keys are never empty).
    private(set) var lastKey: [UInt8] = []
    /// The first prefix that the next key may start with: keys ascend, so
    /// a prefix whose range a key has passed is never needed again.
    private var prefixIndex = 0

    init(prefixes: [[UInt8]]) {
        self.prefixes = prefixes
        lastKey.reserveCapacity(WhyCacheLimits.maximumKeyLength)
    }

    /// Why `length` is not a valid key length, or nil.
    static func keyLengthProblem(_ length: UInt64) -> String? {
        length >= UInt64(WhyCacheLimits.minimumKeyLength) && length <= UInt64(WhyCacheLimits.maximumKeyLength)
            ? nil : "key length \(length) is outside \(WhyCacheLimits.minimumKeyLength)...\(WhyCacheLimits.maximumKeyLength)"
    }

    /// Why `length` is not a valid value length, or nil.
    static func valueLengthProblem(_ length: UInt64) -> String? {
        length <= UInt64(WhyCacheLimits.maximumValueLength)
            ? nil : "value length \(length) exceeds \(WhyCacheLimits.maximumValueLength)"
    }

    /// Accepts `key` as the next key of the stream, or returns why it may
    /// not follow the keys before it. The key's length is checked already.
    mutating func admit(_ key: UnsafeRawBufferPointer) -> String? {
        if !lastKey.isEmpty, compare(key, lastKey) <= 0 {
            return "keys are not in strictly ascending order"
        }
        if !prefixes.isEmpty, !advancePrefix(to: key) {
            return "a key lies outside the snapshot's prefixes"
        }
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: key)
        return nil
    }

    /// Moves `prefixIndex` to the prefix that `key` starts with; false when
    /// there is none. A key that sorts after a prefix without starting with
    /// it sorts after every key under it, and so does every later key.
    private mutating func advancePrefix(to key: UnsafeRawBufferPointer) -> Bool {
        while prefixIndex < prefixes.count {
            let prefix = prefixes[prefixIndex]
            if prefix.withUnsafeBytes({ KeyPrefixes.key(key, startsWith: $0) }) { return true }
            if compare(key, prefix) < 0 { return false }
            prefixIndex += 1
        }
        return false
    }
}
