import CWhyCacheSupport

/// CRC-32C (Castagnoli polynomial, reflected, as in iSCSI, ext4 and LevelDB).
///
/// Every checksum in WhyCache's on-disk formats is a CRC-32C, so that a single,
/// well-known function can be reimplemented by any tool that reads the files.
/// The implementation uses the CPU's CRC-32C instruction where there is one
/// (x86-64 with SSE 4.2, arm64 with CRC32), about four times faster, and
/// otherwise "slicing by 8": eight 256-entry tables, 8 bytes per step.
///
/// ```swift
/// var crc = CRC32C()
/// crc.update(header)
/// crc.update(body)
/// let checksum = crc.value
/// ```
package struct CRC32C: Sendable, Hashable {
    /// The running, non-finalized register.
    @usableFromInline
    package var register: UInt32 = 0xFFFF_FFFF

    /// Creates a checksum of the empty byte string.
    @inlinable
    package init() {}

    /// The checksum of every byte passed to `update(_:)` so far.
    @inlinable
    package var value: UInt32 { register ^ 0xFFFF_FFFF }

    /// Feeds `bytes` into the checksum.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        register = CRC32C.advance(register, bytes)
    }

    /// Feeds `bytes` into the checksum.
    @inlinable
    package mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { self.update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(bytes).withUnsafeBytes { self.update($0) }
        }
    }

    /// The checksum of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        advance(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
    }

    /// The checksum of `bytes`.
    @inlinable
    package static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// Whether ``advance(_:_:)`` uses the CPU's instruction (decided once).
    package static let usesHardware = whycache_crc32c_available() != 0

    private static func advance(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard usesHardware else { return advanceWithTables(start, bytes) }
        guard let base = bytes.baseAddress else { return start }
        return whycache_crc32c_advance(start, base, UInt(bytes.count))
    }

    /// The checksum of `bytes` computed with the tables, whatever the CPU:
    /// for tests that compare both implementations.
    package static func checksumWithTables(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        advanceWithTables(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
    }

    private static func advanceWithTables(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = start
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { t in
            while count - index >= 8 {
                let low = bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian ^ crc
                let high = bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self).littleEndian
                crc = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = t[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        return crc
    }

    /// Table `k` advances the register over a byte followed by `k` zero bytes.
    private static let tables: [UInt32] = {
        let polynomial: UInt32 = 0x82F6_3B78
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
            t[byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 {
                let previous = t[(k - 1) * 256 + byte]
                t[k * 256 + byte] = t[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return t
    }()
}
