import ArgumentParser

/// The form of the keys of a `bench state` run: workload W's decimal keys,
/// or one of two other shapes that keep a read-path design from being tuned
/// to decimal keys alone. Key `i` of every shape is a pure function of `i`,
/// so a reader regenerates the key of a random existing entry without a
/// table, and `Benchmarks/KeyShapes/bench_shapes.c` builds the same keys for
/// LMDB and the private hash table.
enum KeyShape: String, CaseIterable, ExpressibleByArgument {
    /// `user:%08d`, 13 bytes: workload W (``Workload/makeKey(_:_:)``).
    case user
    /// 16 bytes without structure: two SplitMix64 outputs (little-endian)
    /// from the state `i * 0x9E3779B97F4A7C15 ^ 0xD1B54A32D192ED03`. The
    /// first output is a bijection of `i`, so no two keys are equal.
    case random16
    /// `/api/v1/users/<i>/settings` with `i` in decimal, no padding: 24 to
    /// 33 bytes, a long shared prefix, a variable-length middle and a shared
    /// suffix.
    case url

    /// The longest key of any shape: the size of a key buffer.
    static let maximumLength = 33

    /// Writes key `i` into `key` (at least ``maximumLength`` bytes) and
    /// returns its length.
    @inline(__always)
    func makeKey(_ key: UnsafeMutableRawPointer, _ i: UInt32) -> Int {
        switch self {
        case .user:
            Workload.makeKey(key, i)
            return Workload.keyLength
        case .random16:
            var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03
            key.storeBytes(of: Workload.splitmix64(&state).littleEndian, as: UInt64.self)
            key.storeBytes(of: Workload.splitmix64(&state).littleEndian, toByteOffset: 8, as: UInt64.self)
            return 16
        case .url:
            var length = Self.copy(Self.urlHead, to: key)
            length += Self.writeDecimal(i, to: key + length)
            length += Self.copy(Self.urlTail, to: key + length)
            return length
        }
    }

    /// The numbers `0..<n` in the order of their keys (unsigned byte
    /// order, the order of the state file and of a snapshot): for ``user``,
    /// whose zero-padded decimals sort as their numbers, `0..<n` itself;
    /// for the other shapes, the numbers sorted by their keys.
    func keyOrder(_ n: UInt32) -> [UInt32] {
        guard self != .user else { return Array(0..<n) }
        var key = [UInt8](repeating: 0, count: Self.maximumLength)
        let keys: [[UInt8]] = (0..<n).map { i in
            let length = key.withUnsafeMutableBytes { makeKey($0.baseAddress!, i) }
            return Array(key[..<length])
        }
        return (0..<n).sorted { keys[Int($0)].lexicographicallyPrecedes(keys[Int($1)]) }
    }

    private static let urlHead: StaticString = "/api/v1/users/"
    private static let urlTail: StaticString = "/settings"

    @inline(__always)
    private static func copy(_ text: StaticString, to destination: UnsafeMutableRawPointer) -> Int {
        destination.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        return text.utf8CodeUnitCount
    }

    /// Writes `value` in decimal (no padding) and returns the digit count.
    @inline(__always)
    private static func writeDecimal(_ value: UInt32, to destination: UnsafeMutableRawPointer) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        rest = value
        for position in stride(from: digits - 1, through: 0, by: -1) {
            destination.storeBytes(of: UInt8(0x30 + rest % 10), toByteOffset: position, as: UInt8.self)
            rest /= 10
        }
        return digits
    }
}
