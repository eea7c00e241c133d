import WhyCache

/// Recomputes the header checksum of a state file's bytes (CRC-32C of bytes
/// `0..<60`, stored little-endian at 60, FORMAT.md §1.2), so that a test can
/// change a header field and produce a file that only that field makes
/// different, as another release would have written it.
func resealStateFileHeader(_ file: inout [UInt8]) {
    let checksum = CRC32C.checksum(file[0..<60])
    file.replaceSubrange(60..<64, with: withUnsafeBytes(of: checksum.littleEndian) { Array($0) })
}
