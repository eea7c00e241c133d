/// The 32-byte header that starts every binary file of the file datastore.
///
/// ```text
/// offset size  field
///      0    8  magic: names the kind of file ("WCLOGSEG", "WCLOGDIR", "WCCHKPNT")
///      8    4  format version, u32 little-endian (1)
///     12    4  reserved, zero
///     16    8  value, u64 little-endian (its meaning depends on the kind)
///     24    4  CRC-32C of bytes 0..<24, u32 little-endian
///     28    4  reserved, zero
/// ```
struct FileHeader: Sendable, Hashable {
    /// The kinds of file, by magic.
    enum Kind: String, Sendable {
        /// A segment file; the value is the id of its first record.
        case segment = "WCLOGSEG"
        /// The metadata file; the value is the id of the last removed record (0 if none).
        case metadata = "WCLOGDIR"
        /// A checkpoint file; the value is the update id of the checkpoint.
        case checkpoint = "WCCHKPNT"
    }

    /// The size of a header, in bytes.
    static let size = 32

    /// The format version this library writes and reads.
    static let version: UInt32 = 1

    /// What kind of file this header starts.
    var kind: Kind

    /// The kind-specific value.
    var value: UInt64

    /// The 32 header bytes.
    var encoded: [UInt8] {
        var bytes = Array(kind.rawValue.utf8)
        bytes.appendLittleEndian(Self.version)
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(value)
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        bytes.appendLittleEndian(UInt32(0))
        return bytes
    }

    /// Decodes a header of the expected kind from the first 32 of `bytes`.
    ///
    /// - Returns: the header, or a reason why `bytes` does not start with one.
    static func decode(_ bytes: [UInt8], expecting kind: Kind) -> Result<FileHeader, HeaderFailure> {
        guard bytes.count >= size else { return .failure(.tooShort) }
        guard bytes[0..<8].elementsEqual(kind.rawValue.utf8) else { return .failure(.wrongMagic) }
        guard bytes.loadLittleEndian(UInt32.self, at: 24) == CRC32C.checksum(bytes[0..<24]) else {
            return .failure(.checksumMismatch)
        }
        let version = bytes.loadLittleEndian(UInt32.self, at: 8)
        guard version == Self.version else { return .failure(.unsupportedVersion(version)) }
        return .success(FileHeader(kind: kind, value: bytes.loadLittleEndian(UInt64.self, at: 16)))
    }

    /// Why bytes are not a valid header.
    enum HeaderFailure: Error, CustomStringConvertible {
        case tooShort
        case wrongMagic
        case checksumMismatch
        case unsupportedVersion(UInt32)

        var description: String {
            switch self {
            case .tooShort: "the file is shorter than its \(FileHeader.size)-byte header"
            case .wrongMagic: "the file does not start with the expected magic"
            case .checksumMismatch: "the header checksum does not match"
            case .unsupportedVersion(let version): "format version \(version) is not supported"
            }
        }
    }
}
