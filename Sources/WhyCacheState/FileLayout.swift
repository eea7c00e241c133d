// The byte layout of the shared-state file. docs/FORMAT.md explains every
// structure and its crash-safety argument; this file is the single place in
// the code where offsets and sizes are defined.
//
//   offset 0          header page (4 KiB): identity, geometry, the commit
//                     pointer, the writer area (allocator state)
//   offset 4096       reader table: `readerSlotCount` slots of 64 bytes
//   offset heapStart  the heap: blocks (tree nodes, leaves, commit records,
//                     retire lists), 8-byte aligned, sizes from `SizeClass`
//
// Integers are little-endian in FORMAT.md's terms. The header and commit
// records are written and checked with explicit little-endian conversions;
// the hot read path (tree nodes, the reader table, the commit fields a pin
// loads) uses host order, which is the same on every platform WhyCache
// builds for (x86-64 and arm64 Linux). A big-endian port would need a new
// `formatVersion`.

enum FileLayout {
    /// `"WhyCache"` in ASCII, read as a little-endian UInt64.
    static let magic: UInt64 = 0x6568_6361_4379_6857
    /// The oldest format version this code reads. Versions 1 and 2 stored a
    /// leaf's lengths in a fixed 6-byte header; since version 3 they are
    /// varints (FORMAT.md §1.6). Older files are refused with
    /// `unsupportedFormatVersion`; a cache that may replace unusable files
    /// rebuilds them from the log (the file is only a cache).
    static let oldestFormatVersion: UInt32 = 3
    /// The newest format version this code reads. A file is written with the
    /// oldest version that describes it, the version a reader needs:
    /// ``plainFormatVersion`` for a file without subscribed prefixes and
    /// ``subscribedFormatVersion`` for one with them.
    static let newestFormatVersion: UInt32 = 4
    /// The version of a file with subscribed prefixes. A reader that knows
    /// only ``plainFormatVersion`` must refuse such a file rather than apply
    /// every key to it, so subscriptions have a version of their own.
    static let subscribedFormatVersion: UInt32 = 4
    /// The version of a file without subscribed prefixes.
    static let plainFormatVersion: UInt32 = 3

    static let pageSize = 4096
    static let headerSize = 4096

    // MARK: Header: immutable after creation, covered by `headerChecksum`.
    static let magicOffset = 0  // UInt64
    static let formatVersionOffset = 8  // UInt32
    static let readerSlotCountOffset = 12  // UInt32
    static let mapSizeOffset = 16  // UInt64: the largest size the file may reach
    static let heapStartOffset = 24  // UInt64
    static let fileIdentifierOffset = 32  // 16 random bytes
    static let creationFlagsOffset = 48  // UInt32: the `creationFlag…` bits below
    /// Creation flag: commits are flushed (`Durability.systemCrash`).
    static let creationFlagDurable: UInt32 = 1
    /// Creation flag: the header page holds a subscribed-prefix block.
    static let creationFlagSubscribed: UInt32 = 2
    /// Creation flag: free-list links and heads carry a 16-bit check tag in
    /// their top bits (docs/FORMAT.md section 1.8). Set on every file created
    /// since; older files keep untagged links.
    static let creationFlagTaggedFreeLists: UInt32 = 4
    /// Creation flag: every retire list carries a CRC-32C of its
    /// transaction, count and entries (docs/FORMAT.md section 1.9). Set on
    /// every file created since; older files keep unchecked lists.
    static let creationFlagChecksummedRetireLists: UInt32 = 8
    /// Every creation flag this code knows; a file with any other bit was
    /// written by a newer version with a feature this one cannot honour.
    static let knownCreationFlags: UInt32 =
        creationFlagDurable | creationFlagSubscribed | creationFlagTaggedFreeLists | creationFlagChecksummedRetireLists
    /// The bits of a free-list word that hold the offset (offsets stay below
    /// 2^46, the largest file); the bits above hold the check tag.
    static let freeListOffsetMask: UInt64 = (1 << 48) - 1
    static let headerChecksumOffset = 60  // UInt32: CRC-32C of bytes 0..<60
    static let checksummedHeaderLength = 60

    // MARK: Header: shared mutable words (atomics), each on its own cache line.
    /// Offset of the current commit record. Written only by the writer, with a
    /// sequentially consistent atomic store, after everything it points to
    /// is in place (docs/FORMAT.md section 1.2).
    static let currentCommitOffset = 64
    /// Non-zero once the file was discarded or replaced (see `SharedStateFile.remove`).
    static let retiredOffset = 128
    /// One past the highest reader slot ever claimed (a hint for the writer's scan).
    static let readerSlotHighWaterOffset = 192

    // MARK: Writer area: read and written only by the holder of the writer lock.
    /// Non-zero while a write transaction may have changed the allocator
    /// state; a writer that finds it non-zero rebuilds that state (recovery).
    static let writerDirtyOffset = 256  // UInt64: the transaction id in progress
    static let bumpOffset = 264  // UInt64: end of the carved part of the heap
    static let freeBytesOffset = 272  // UInt64: bytes on the free lists
    static let pendingHeadOffset = 280  // UInt64: newest retire list, 0 = none
    static let pendingBytesOffset = 288  // UInt64: bytes listed by retire lists
    /// The boot of the machine on which the writer area was last trusted
    /// (16 bytes). After an operating-system crash the pages of the writer
    /// area and of the blocks a transaction overwrote reach the disk in no
    /// particular order, so a writer on a new boot rebuilds the allocator state.
    static let writerBootIDOffset = 296
    static let freeListHeadsOffset = 512  // UInt64 × SizeClass.count
    // 512 + 8 × 108 = 1376 < 2048.

    // MARK: Header: the subscribed-prefix block, immutable after creation,
    // present when `creationFlagSubscribed` is set, covered by its own checksum.
    //
    //   2048  UInt32  prefixCount, 1...maximumSubscribedPrefixCount
    //   2052  UInt32  entriesLength E: the bytes of the entries
    //   2056  E       prefixCount × (UInt16 length 1...1024, that many bytes), canonical order
    //   2056 + E      UInt32 CRC-32C of bytes 2048..<2056 + E
    //
    // No writer ever touches 1376..<4096 of the header page, so the block
    // never changes once the file is linked at its path.
    static let prefixBlockOffset = 2048
    static let prefixCountOffset = 2048
    static let prefixEntriesLengthOffset = 2052
    static let prefixEntriesOffset = 2056
    /// The length field in front of each prefix.
    static let prefixLengthSize = 2
    /// The most prefixes a state file subscribes to.
    static let maximumSubscribedPrefixCount = 64
    /// The most bytes the subscribed prefixes hold together.
    static let maximumSubscribedPrefixBytes = 1536
    // 2056 + 64 × 2 + 1536 + 4 = 3724 <= 4096.

    // MARK: Reader table.
    static let readerTableOffset = 4096
    static let readerSlotSize = 64
    static let slotPinnedTransactionOffset = 0  // UInt64, 0 = not reading
    static let slotOwnerOffset = 8  // UInt64: owner pid, 0 = free
    /// Reader slot `i` is owned while its owner holds an open-file-description
    /// write lock on the byte at `readerLockBase + i` (far beyond any real data:
    /// byte-range locks need not cover existing bytes).
    static let readerLockBase: Int64 = 1 << 60
    /// The poller lease (docs/FORMAT.md section 1.10): the process whose
    /// updater reads the datastore on the interval, for every process that
    /// shares the file, holds an open-file-description write lock on the byte
    /// at `pollerLeaseOffset` (far beyond any real data like the reader-slot
    /// lock bytes, and below `readerLockBase`, so it never meets one of them).
    static let pollerLeaseOffset: Int64 = 1 << 59

    static let defaultReaderSlotCount = 1024
    static let maximumReaderSlotCount = 1 << 16

    static func heapStart(readerSlotCount: Int) -> Int {
        roundUp(readerTableOffset + readerSlotCount * readerSlotSize, to: pageSize)
    }

    // MARK: Commit record: a 128-byte heap block, immutable once published.
    static let commitRecordSize = 128
    static let commitMagic: UInt32 = 0x7263_4357  // "WCcr"
    static let commitMagicOffset = 0  // UInt32
    static let commitChecksumOffset = 4  // UInt32: CRC-32C of bytes 8..<128
    static let commitTransactionOffset = 8  // UInt64
    static let commitUpdateIDOffset = 16  // UInt64
    static let commitRootOffset = 24  // UInt64: node reference, 0 = empty tree
    static let commitKeyCountOffset = 32  // UInt64
    static let commitHeapEndOffset = 40  // UInt64: every block of this state ends at or before it
    static let commitBootIDOffset = 48  // 16 bytes: zero for durable commits
    static let commitTimeOffset = 64  // UInt64: wall-clock nanoseconds since 1970
    static let commitFlagsOffset = 72  // UInt64: see `commitFlagInitialized`
    /// Commit flag: the state was built from a change log (by a cache's
    /// update or a restore), as opposed to a file that was only created.
    static let commitFlagInitialized: UInt64 = 1
    /// UInt64: the id of the log record whose payload checksum is at
    /// `commitAppliedRecordChecksumOffset`; it describes the state only when
    /// it equals the commit's update id (0: no checksum). Files written
    /// before the field existed hold 0 here.
    static let commitAppliedRecordIDOffset = 80
    /// UInt32: CRC-32C of the payload of the record at `commitAppliedRecordIDOffset`.
    static let commitAppliedRecordChecksumOffset = 88
    // 92..<128 reserved, zero.

    // MARK: Retire list: a heap block naming blocks that old readers may still read.
    static let retireListHeaderSize = 24
    static let retireTransactionOffset = 0  // UInt64: the commit that retired them
    static let retireOlderOffset = 8  // UInt64: the next older retire list, 0 = none
    /// UInt32 in a file with `creationFlagChecksummedRetireLists`, then the
    /// UInt32 checksum at `retireChecksumOffset`; UInt64 in older files.
    static let retireCountOffset = 16
    /// UInt32: CRC-32C of the list's transaction, count and entries (files
    /// with `creationFlagChecksummedRetireLists`).
    static let retireChecksumOffset = 20
    // then `count` × UInt64: block offset | size class << 56
    static let retireListCapacity = (32768 - retireListHeaderSize) / 8

    @inline(__always)
    static func roundUp(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) & ~(alignment - 1)
    }
}
