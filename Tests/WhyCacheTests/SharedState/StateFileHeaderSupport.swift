import WhyCache

/// Recomputes the header checksum of a state file's bytes (CRC-32C of bytes
/// `0..<60`, stored little-endian at 60, FORMAT.md §1.2), so that a test can
/// change a header field and produce a file that only that field makes
/// different, as another release would have written it.
func resealStateFileHeader(_ file: inout [UInt8]) {
    let checksum = CRC32C.checksum(file[0..<60])
    file.replaceSubrange(60..<64, with: withUnsafeBytes(of: checksum.littleEndian) { Array($0) })
}

/// The little-endian 8-byte word at `offset` of a state file's bytes.
func stateFileWord(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    bytes[offset..<offset + 8].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
}

/// Stores `value` as the little-endian 8-byte word at `offset` of a state file's bytes.
func setStateFileWord(_ value: UInt64, in bytes: inout [UInt8], at offset: Int) {
    for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
}
