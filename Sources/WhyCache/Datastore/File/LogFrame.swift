/// The framing of one record inside a segment or checkpoint file.
///
/// ```text
/// offset size  field
///      0    4  payload length N, u32 little-endian
///      4    8  update id, u64 little-endian (in a checkpoint: the 1-based payload number)
///     12    4  CRC-32C of the payload, u32 little-endian
///     16    4  CRC-32C of bytes 0..<16, u32 little-endian
///     20    N  payload
/// ```
///
/// The header has its own checksum so that a damaged length is recognized
/// before it is used to find the next frame.
enum LogFrame {
    /// The size of a frame header, in bytes.
    static let headerSize = 20

    /// A decoded frame header.
    struct Header {
        var payloadLength: Int
        var updateID: UInt64
        var payloadChecksum: UInt32
    }

    /// Appends the frame of `payload` with id `updateID` to `bytes`.
    ///
    /// - Precondition: `payload.count <= UInt32.max`.
    static func append(updateID: UInt64, payload: [UInt8], to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.appendLittleEndian(UInt32(payload.count))
        bytes.appendLittleEndian(updateID)
        bytes.appendLittleEndian(CRC32C.checksum(payload))
        bytes.appendLittleEndian(CRC32C.checksum(bytes[start..<start + 16]))
        bytes.append(contentsOf: payload)
    }

    /// Decodes the header at `offset` of `bytes`, or `nil` when its checksum does not match.
    ///
    /// - Precondition: `bytes` holds ``headerSize`` bytes at `offset`.
    static func header(in bytes: [UInt8], at offset: Int) -> Header? {
        let stored = bytes.loadLittleEndian(UInt32.self, at: offset + 16)
        guard stored == CRC32C.checksum(bytes[offset..<offset + 16]) else { return nil }
        return Header(
            payloadLength: Int(bytes.loadLittleEndian(UInt32.self, at: offset)),
            updateID: bytes.loadLittleEndian(UInt64.self, at: offset + 4),
            payloadChecksum: bytes.loadLittleEndian(UInt32.self, at: offset + 12)
        )
    }
}
