/// A 64-bit FNV-1a hash: the same value on every machine and in every
/// process, unlike `Hasher`, which is seeded per process.
///
/// It indexes single-key records by key (the key itself is compared too, so
/// a collision costs a comparison, never a wrong deletion) and names the
/// server-wide locks of one log.
enum StableHash {
    /// The hash of `bytes`.
    static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
