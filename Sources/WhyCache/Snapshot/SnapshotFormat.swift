/// The constants of the snapshot stream format, version 1 (docs/FORMAT.md
/// section 6): the only place they are defined.
///
/// ```text
/// stream   := header  entry{keyCount}  trailer
/// header   := "WCSNAPSH"  version u32  headerLength u32  flags u32  prefixCount u32
///             updateID u64  keyCount u64  commitTime u64
///             (varint length, prefix bytes){prefixCount}  CRC-32C u32 of the header before it
/// entry    := varint keyLength  key  varint valueLength  value      keys strictly ascending
/// trailer  := "WCSNPEND"  keyCount u64  CRC-32C u32 of every stream byte before it
/// ```
enum SnapshotFormat {
    /// The first eight bytes of every snapshot stream: ASCII `WCSNAPSH`.
    static let magic: [UInt8] = Array("WCSNAPSH".utf8)

    /// The format version this library writes and reads.
    static let version: UInt32 = 1

    /// The header flags this library understands (none yet). A reader
    /// rejects a header that sets any other bit.
    static let knownFlags: UInt32 = 0

    /// Offsets of the header's fixed fields.
    static let versionOffset = 8
    static let headerLengthOffset = 12
    static let flagsOffset = 16
    static let prefixCountOffset = 20
    static let updateIDOffset = 24
    static let keyCountOffset = 32
    static let commitTimeOffset = 40

    /// The bytes a reader needs to learn a header's length: magic, version
    /// and `headerLength`.
    static let prologueSize = 16

    /// The fixed fields of the header; the prefix list follows.
    static let fixedHeaderSize = 48

    /// The size of the header's checksum, its last field.
    static let checksumSize = 4

    /// The largest `headerLength` a reader accepts (it holds the whole
    /// header in memory to check its checksum before it trusts any field).
    static let maximumHeaderSize = 16 << 20

    /// The first eight bytes of the trailer: ASCII `WCSNPEND`.
    static let trailerMagic: [UInt8] = Array("WCSNPEND".utf8)

    /// The first two bytes of a gzip stream (RFC 1952), by which a reader
    /// recognises compressed input.
    static let gzipMagic: [UInt8] = [0x1F, 0x8B]

    /// The size of the buffer between the stream and a sink or source: the
    /// most a writer holds besides one zlib stream, and what a reader's
    /// buffer grows to once a stream needs more than one read (and beyond,
    /// to the largest header or value it meets).
    static let bufferSize = 1 << 20

    /// The size of a reader's buffer before its first read: small streams
    /// (a prefix's few keys) never allocate the whole ``bufferSize``.
    static let firstReadSize = 64 << 10
}
