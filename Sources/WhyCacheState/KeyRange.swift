/// A contiguous range of keys in byte order: every key `k` with
/// `lowerBound <= k` (when there is a lower bound) and `k < upperBound`
/// (when there is an upper bound). Bytes compare as unsigned numbers, and a
/// key sorts before every longer key it is a prefix of.
public struct KeyRange: Sendable, Hashable {
    /// The smallest key in the range, or nil for no lower bound.
    public var lowerBound: [UInt8]?
    /// The first key after the range, or nil for no upper bound.
    public var upperBound: [UInt8]?

    /// The keys from `lowerBound` (inclusive) up to `upperBound` (exclusive).
    public init(from lowerBound: [UInt8]? = nil, upTo upperBound: [UInt8]? = nil) {
        self.lowerBound = lowerBound
        self.upperBound = upperBound
    }

    /// Every key.
    public static let all = KeyRange()

    /// Every key that starts with `prefix` (every key, for an empty prefix).
    public static func prefix(_ prefix: some Sequence<UInt8>) -> KeyRange {
        let bytes = Array(prefix)
        return KeyRange(from: bytes.isEmpty ? nil : bytes, upTo: successor(ofPrefix: bytes))
    }

    /// Whether `key` lies in the range.
    public func contains(_ key: some Sequence<UInt8>) -> Bool {
        let bytes = Array(key)
        if let lowerBound, bytes.lexicographicallyPrecedes(lowerBound) { return false }
        if let upperBound, !bytes.lexicographicallyPrecedes(upperBound) { return false }
        return true
    }

    /// The smallest byte string greater than every string starting with
    /// `prefix`: drop trailing 0xFF bytes, then add one to the last byte. Nil
    /// when there is none (an empty prefix or one made only of 0xFF bytes).
    static func successor(ofPrefix prefix: [UInt8]) -> [UInt8]? {
        var bytes = prefix
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return nil
    }
}
