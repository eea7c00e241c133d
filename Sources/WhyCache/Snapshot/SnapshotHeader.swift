/// What a snapshot says about the state it holds, from its header
/// (docs/FORMAT.md section 6.2).
public struct SnapshotHeader: Sendable, Hashable {
    /// The version of the stream format (``SnapshotReader/supportedFormatVersion``).
    public var formatVersion: UInt32
    /// The update id (log position) of the state the snapshot holds; a
    /// restored state file carries it.
    public var updateID: UInt64
    /// The number of entries in the snapshot.
    public var keyCount: Int
    /// When the transaction that produced the snapshotted state committed
    /// (nanoseconds since 1970).
    public var commitTimeNanoseconds: UInt64
    /// The key prefixes the snapshot holds, in canonical form (sorted, none
    /// starting another); empty when it holds every key of the state.
    public var prefixes: [[UInt8]]

    init(updateID: UInt64, keyCount: Int, commitTimeNanoseconds: UInt64, prefixes: [[UInt8]]) {
        self.formatVersion = SnapshotFormat.version
        self.updateID = updateID
        self.keyCount = keyCount
        self.commitTimeNanoseconds = commitTimeNanoseconds
        self.prefixes = prefixes
    }

    /// The header's bytes, checksum included.
    ///
    /// - Precondition: `prefixes` is canonical, each at most 1024 bytes.
    /// - Throws: ``SnapshotError/invalidArgument(reason:)`` when the prefix
    ///   list makes the header longer than a reader accepts.
    func encoded() throws(SnapshotError) -> [UInt8] {
        var bytes = SnapshotFormat.magic
        bytes.appendLittleEndian(formatVersion)
        bytes.appendLittleEndian(UInt32(0))  // headerLength, set below
        bytes.appendLittleEndian(SnapshotFormat.knownFlags)
        bytes.appendLittleEndian(UInt32(truncatingIfNeeded: prefixes.count))  // < 2^23: the length is bounded below
        bytes.appendLittleEndian(updateID)
        bytes.appendLittleEndian(UInt64(keyCount))
        bytes.appendLittleEndian(commitTimeNanoseconds)
        for prefix in prefixes {
            LEB128.append(UInt64(prefix.count), to: &bytes)
            bytes.append(contentsOf: prefix)
        }
        let length = bytes.count + SnapshotFormat.checksumSize
        guard length <= SnapshotFormat.maximumHeaderSize else {
            throw .invalidArgument(reason: "the key prefixes need a header of \(length) bytes, more than \(SnapshotFormat.maximumHeaderSize)")
        }
        withUnsafeBytes(of: UInt32(length).littleEndian) { field in
            bytes.replaceSubrange(SnapshotFormat.headerLengthOffset..<SnapshotFormat.headerLengthOffset + 4, with: field)
        }
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    /// The length of the header that starts with `prologue`, the first
    /// ``SnapshotFormat/prologueSize`` bytes of the stream or, at the end of
    /// the input, fewer.
    ///
    /// The magic is checked first (a shorter input that could still be the
    /// start of one is truncated), then the version — a later version may
    /// lay out everything after it differently — then the length's bounds.
    static func length(fromPrologue prologue: UnsafeRawBufferPointer) throws(SnapshotError) -> Int {
        let magic = SnapshotFormat.magic
        guard prologue.prefix(magic.count).elementsEqual(magic.prefix(prologue.count)) else { throw .notASnapshot }
        guard prologue.count >= SnapshotFormat.prologueSize else { throw .truncated(offset: UInt64(prologue.count)) }
        let version = prologue.loadLittleEndian(UInt32.self, at: SnapshotFormat.versionOffset)
        guard version == SnapshotFormat.version else {
            throw .unsupportedFormatVersion(found: version, supported: SnapshotFormat.version)
        }
        let length = Int(prologue.loadLittleEndian(UInt32.self, at: SnapshotFormat.headerLengthOffset))
        let minimum = SnapshotFormat.fixedHeaderSize + SnapshotFormat.checksumSize
        guard length >= minimum, length <= SnapshotFormat.maximumHeaderSize else {
            throw .corrupt(
                offset: UInt64(SnapshotFormat.headerLengthOffset),
                reason: "header length \(length) is outside \(minimum)...\(SnapshotFormat.maximumHeaderSize)")
        }
        return length
    }

    /// Decodes a whole header, `bytes` being exactly as long as
    /// ``length(fromPrologue:)`` said.
    ///
    /// The checksum is checked before any field past the prologue is used,
    /// so that a damaged header is reported as such; then the flags, the
    /// key count, and the prefix list, which must fill the header exactly
    /// and be canonical.
    init(decoding bytes: UnsafeRawBufferPointer) throws(SnapshotError) {
        let checksumOffset = bytes.count - SnapshotFormat.checksumSize
        guard bytes.loadLittleEndian(UInt32.self, at: checksumOffset)
            == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<checksumOffset]))
        else { throw .checksumMismatch(.header) }
        let flags = bytes.loadLittleEndian(UInt32.self, at: SnapshotFormat.flagsOffset)
        guard flags & ~SnapshotFormat.knownFlags == 0 else { throw .unsupportedFlags(flags) }
        let keyCount = bytes.loadLittleEndian(UInt64.self, at: SnapshotFormat.keyCountOffset)
        guard keyCount <= UInt64(Int.max) else {
            throw .corrupt(offset: UInt64(SnapshotFormat.keyCountOffset), reason: "key count \(keyCount) is out of range")
        }
        let prefixCount = bytes.loadLittleEndian(UInt32.self, at: SnapshotFormat.prefixCountOffset)
        var prefixes: [[UInt8]] = []
        var offset = SnapshotFormat.fixedHeaderSize
        let list = UnsafeRawBufferPointer(rebasing: bytes[..<checksumOffset])
        func corrupt(at offset: Int, _ reason: String) -> SnapshotError { .corrupt(offset: UInt64(offset), reason: reason) }
        for _ in 0..<prefixCount {
            let start = offset
            let length: UInt64
            do throws(LEB128.ReadFailure) { length = try LEB128.read(list, at: &offset) } catch {
                throw corrupt(at: start, "the prefix list does not fit in the header")
            }
            guard length >= 1, KeyPrefixes.lengthProblem(Int(clamping: length)) == nil else {
                throw corrupt(at: start, "key prefix length \(length) is outside 1...\(WhyCacheLimits.maximumKeyLength)")
            }
            guard length <= UInt64(list.count - offset) else { throw corrupt(at: start, "the prefix list does not fit in the header") }
            prefixes.append(Array(list[offset..<offset + Int(length)]))
            offset += Int(length)
        }
        guard offset == checksumOffset else { throw corrupt(at: offset, "the header holds bytes after its prefix list") }
        guard KeyPrefixes.canonical(prefixes) == prefixes else {
            throw corrupt(at: SnapshotFormat.fixedHeaderSize, "the key prefixes are not sorted, or one starts another")
        }
        self.init(
            updateID: bytes.loadLittleEndian(UInt64.self, at: SnapshotFormat.updateIDOffset), keyCount: Int(keyCount),
            commitTimeNanoseconds: bytes.loadLittleEndian(UInt64.self, at: SnapshotFormat.commitTimeOffset),
            prefixes: prefixes)
    }
}
