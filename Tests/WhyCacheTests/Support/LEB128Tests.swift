import Testing
@testable import WhyCache

/// The varints of log records and snapshots: every value round-trips in its
/// shortest form, and every other form — truncated, padded, wider than 64
/// bits — is refused without reading past the buffer.
@Suite struct LEB128Tests {
    /// Values at every group boundary, and the ends of the range.
    static let values: [UInt64] = {
        var values: [UInt64] = [0, 1, UInt64.max, UInt64.max - 1, 1 << 63, (1 << 63) - 1]
        for bits in stride(from: 7, through: 63, by: 7) {
            values += [(1 << UInt64(bits)) - 1, 1 << UInt64(bits), (1 << UInt64(bits)) + 1]
        }
        return values
    }()

    /// `value` encoded by `append`.
    private func encoded(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        LEB128.append(value, to: &bytes)
        return bytes
    }

    /// `bytes` read from the start, with where the read stopped.
    private func read(_ bytes: [UInt8]) -> (Result<UInt64, LEB128.ReadFailure>, offset: Int) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            let result = Result { () throws(LEB128.ReadFailure) in try LEB128.read(buffer, at: &offset) }
            return (result, offset)
        }
    }

    @Test(arguments: values)
    func everyValueRoundTripsInItsShortestForm(value: UInt64) throws {
        let bytes = encoded(value)
        #expect(bytes.count == LEB128.size(of: value))
        #expect(bytes.count <= LEB128.maximumSize)
        // The shortest form: seven bits per byte of the value's significant bits.
        #expect(bytes.count == max(1, (64 - value.leadingZeroBitCount + 6) / 7))
        #expect(bytes.dropLast().allSatisfy { $0 & 0x80 != 0 } && bytes.last! & 0x80 == 0)
        var written = [UInt8](repeating: 0xAA, count: LEB128.maximumSize + 1)
        let size = written.withUnsafeMutableBytes { LEB128.write(value, to: $0.baseAddress!) }
        #expect(Array(written[..<size]) == bytes)
        #expect(written[size] == 0xAA)
        let (result, offset) = read(bytes + [0x7F])
        #expect(try result.get() == value)
        #expect(offset == bytes.count)
    }

    @Test func knownEncodings() {
        #expect(encoded(0) == [0x00])
        #expect(encoded(127) == [0x7F])
        #expect(encoded(128) == [0x80, 0x01])
        #expect(encoded(300) == [0xAC, 0x02])
        #expect(encoded(UInt64.max) == [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    @Test(arguments: [[], [0x80], [0xFF, 0xFF], [UInt8](repeating: 0x80, count: 9)] as [[UInt8]])
    func aVarintCutShortIsTruncated(bytes: [UInt8]) {
        let (result, offset) = read(bytes)
        #expect(throws: LEB128.ReadFailure.truncated) { try result.get() }
        #expect(offset == bytes.count)
    }

    /// Padded forms (a final zero group), an eleventh byte, and a tenth
    /// byte carrying more than the one bit a `UInt64` has left.
    @Test(arguments: [
        [0x80, 0x00], [0x81, 0x00], [0xFF, 0x80, 0x00],
        [UInt8](repeating: 0xFF, count: 9) + [0x02],
        [UInt8](repeating: 0x80, count: 9) + [0x7F],
        [UInt8](repeating: 0xFF, count: 10) + [0x01],
        [UInt8](repeating: 0x80, count: 9) + [0x00],
    ] as [[UInt8]])
    func aLongerOrWiderFormIsOverlong(bytes: [UInt8]) {
        let (result, offset) = read(bytes)
        #expect(throws: LEB128.ReadFailure.overlong) { try result.get() }
        #expect(offset <= bytes.count)
    }
}
