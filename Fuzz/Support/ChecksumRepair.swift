// Checksum repair: every format the targets read is covered by CRC-32C
// checksums, which random mutations almost never keep valid, so a fuzzer
// that only fed raw bytes would stop at the first checksum. Each target
// therefore reads its input twice: as it is, and with every checksum it can
// locate recomputed, which lets mutations reach the checks behind them.

@testable import WhyCache

/// Recomputes the checksums of the WhyCache formats in place. Every function
/// leaves bytes it cannot interpret as they are, and never reads outside them.
enum ChecksumRepair {
    /// Calls `body` with `bytes` as they are, then, when `repair` changes
    /// them, with the repaired copy: how each target reads its input twice.
    static func eachVariant(of bytes: [UInt8], repairedBy repair: (inout [UInt8]) -> Void, _ body: ([UInt8]) -> Void) {
        var repaired = bytes
        repair(&repaired)
        body(bytes)
        if repaired != bytes { body(repaired) }
    }

    /// Stores the CRC-32C of `bytes[range]` little-endian at `offset`, when both lie inside `bytes`.
    static func store(checksumOf range: Range<Int>, at offset: Int, in bytes: inout [UInt8]) {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count, offset >= 0, offset + 4 <= bytes.count else { return }
        let checksum = CRC32C.checksum(bytes[range])
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: checksum >> (8 * index)) }
    }

    /// A little-endian integer at `offset`, or nil when it does not lie inside `bytes`.
    static func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int, in bytes: [UInt8]) -> T? {
        guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else { return nil }
        return bytes.loadLittleEndian(T.self, at: offset)
    }

    /// A log record (docs/FORMAT.md §3.1): the last four bytes.
    static func logRecord(_ bytes: inout [UInt8], in range: Range<Int>? = nil) {
        let range = range ?? 0..<bytes.count
        guard range.count >= 5 else { return }
        store(checksumOf: range.lowerBound..<range.upperBound - 4, at: range.upperBound - 4, in: &bytes)
    }

    /// A file datastore header (§3.3) at `offset`.
    static func fileHeader(_ bytes: inout [UInt8], at offset: Int) {
        store(checksumOf: offset..<offset + 24, at: offset + 24, in: &bytes)
    }

    /// The frames (§3.5) from `start` up to `end`: each complete frame's
    /// payload (a log record) and payload checksum, then its header
    /// checksum. Returns where the walk stopped.
    @discardableResult
    static func frames(_ bytes: inout [UInt8], from start: Int, to end: Int) -> Int {
        var offset = start
        while offset + 20 <= end, let length = load(UInt32.self, at: offset, in: bytes) {
            let payloadEnd = offset + 20 + Int(length)
            guard payloadEnd <= end else { break }
            logRecord(&bytes, in: offset + 20..<payloadEnd)
            store(checksumOf: offset + 20..<payloadEnd, at: offset + 12, in: &bytes)
            store(checksumOf: offset..<offset + 16, at: offset + 16, in: &bytes)
            offset = payloadEnd
        }
        return offset
    }

    /// A file of the file datastore: its header, and for a segment or a
    /// checkpoint its frames (and a checkpoint's footer, §3.7).
    static func datastoreFile(_ bytes: inout [UInt8]) {
        fileHeader(&bytes, at: 0)
        if bytes.starts(with: Array("WCLOGSEG".utf8)) {
            frames(&bytes, from: 32, to: bytes.count)
        } else if bytes.starts(with: Array("WCCHKPNT".utf8)), bytes.count >= 64 {
            frames(&bytes, from: 32, to: bytes.count - 32)
            store(checksumOf: bytes.count - 32..<bytes.count - 8, at: bytes.count - 8, in: &bytes)
        }
    }

    /// A snapshot stream (§6): the header checksum, at the end of the
    /// header its length field names, and the stream checksum, in the last
    /// four bytes.
    static func snapshot(_ bytes: inout [UInt8]) {
        if let length = load(UInt32.self, at: 12, in: bytes), length >= 52, Int(length) <= bytes.count {
            store(checksumOf: 0..<Int(length) - 4, at: Int(length) - 4, in: &bytes)
        }
        if bytes.count >= 72 { store(checksumOf: 0..<bytes.count - 4, at: bytes.count - 4, in: &bytes) }
    }

    /// A shared-state file (§1): the header checksum, the subscribed-prefix
    /// block's checksum and the current commit record's checksum.
    static func stateFile(_ bytes: inout [UInt8]) {
        store(checksumOf: 0..<60, at: 60, in: &bytes)
        if let flags = load(UInt32.self, at: 48, in: bytes), flags & 2 != 0,
            let entries = load(UInt32.self, at: 2052, in: bytes), entries <= 2048
        {
            store(checksumOf: 2048..<2056 + Int(entries), at: 2056 + Int(entries), in: &bytes)
        }
        if let commit = load(UInt64.self, at: 64, in: bytes), commit < UInt64(bytes.count) {
            store(checksumOf: Int(commit) + 8..<Int(commit) + 128, at: Int(commit) + 4, in: &bytes)
        }
    }
}
