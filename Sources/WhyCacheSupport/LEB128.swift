/// Unsigned LEB128 varints: seven bits per byte, least significant group
/// first, the high bit set on every byte but the last.
///
/// Only the shortest encoding of a number is accepted when reading, so that
/// every record has exactly one encoding.
package enum LEB128 {
    /// The longest encoding of a `UInt64`.
    package static let maximumSize = 10

    /// The number of bytes `value` encodes to (1...10).
    @inline(__always)
    package static func size(of value: UInt64) -> Int {
        // Each byte carries seven bits; zero still takes one byte.
        let significantBits = 64 - (value | 1).leadingZeroBitCount
        return (significantBits + 6) / 7
    }

    /// Appends the encoding of `value` to `bytes`.
    @inline(__always)
    package static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Writes the encoding of `value` at `pointer` and returns its size.
    ///
    /// - Precondition: `pointer` addresses at least `size(of: value)`
    ///   writable bytes.
    @inline(__always)
    package static func write(_ value: UInt64, to pointer: UnsafeMutableRawPointer) -> Int {
        var rest = value
        var count = 0
        while rest >= 0x80 {
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: rest) | 0x80, toByteOffset: count, as: UInt8.self)
            rest >>= 7
            count += 1
        }
        pointer.storeBytes(of: UInt8(rest), toByteOffset: count, as: UInt8.self)
        return count + 1
    }

    /// Why a varint could not be read.
    package enum ReadFailure: Error {
        /// The bytes ended before the varint did.
        case truncated
        /// The varint is longer than its shortest form or does not fit in 64 bits.
        case overlong
    }

    /// Reads the varint that starts at `offset` in `bytes`, advancing `offset`
    /// past it. Never reads outside `bytes`.
    @inline(__always)
    package static func read(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) throws(ReadFailure) -> UInt64 {
        let first = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw .truncated }
            let byte = bytes[offset]
            offset += 1
            let group = UInt64(byte & 0x7F)
            // The tenth byte may only contribute the single remaining bit.
            guard shift < 63 || group <= 1 else { throw .overlong }
            result |= group << shift
            if byte & 0x80 == 0 {
                // A final zero group after the first byte means a longer-than-needed encoding.
                guard byte != 0 || offset - first == 1 else { throw .overlong }
                return result
            }
            shift += 7
            guard shift < 70 else { throw .overlong }
        }
    }
}
