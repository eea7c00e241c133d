// Little-endian integers in byte arrays: the byte order of every format of
// WhyCache (docs/FORMAT.md), for the code that builds and parses them in
// arrays rather than in mapped memory.

extension Array where Element == UInt8 {
    /// Appends `value` in little-endian byte order.
    package mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension RandomAccessCollection where Element == UInt8, Index == Int {
    /// Reads a little-endian integer at `offset` (relative to `startIndex`).
    ///
    /// - Precondition: the collection holds `MemoryLayout<T>.size` bytes from `offset`.
    package func loadLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in (0..<MemoryLayout<T>.size).reversed() {
            value = value << 8 | T(self[startIndex + offset + index])
        }
        return value
    }
}
