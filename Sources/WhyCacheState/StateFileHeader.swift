import WhyCacheSupport

/// The immutable header page of a state file (docs/FORMAT.md section 1.2,
/// with its subscribed-prefix block): written once when the file is
/// created, checked by every process before it maps the file.
///
/// The header fixes the file's geometry (reader slots, heap start, the size
/// the mapping reserves), its creation flags and the keys it keeps. Its first
/// ``FileLayout/checksummedHeaderLength`` bytes are covered by a CRC-32C, and
/// the subscribed-prefix block by its own; nothing here changes after
/// creation, so a reader may trust what it validated once for as long as it
/// keeps the file open.
struct StateFileHeader: Equatable {
    /// The format version (``FileLayout/plainFormatVersion`` or ``FileLayout/subscribedFormatVersion``).
    var formatVersion: UInt32
    /// The number of reader slots in the reader table.
    var readerSlotCount: Int
    /// The bytes of address space a process maps: the file's maximum size.
    var mapSize: Int
    /// Where the heap starts: after the header page and the reader table.
    var heapStart: Int
    /// Whether commits are flushed to disk (creation flag bit 0).
    var durable: Bool
    /// Whether free-list words carry check tags (creation flag bit 2).
    var taggedFreeLists: Bool
    /// Whether retire lists carry checksums (creation flag bit 3).
    var checksummedRetireLists: Bool
    /// The keys the file keeps (creation flag bit 1 and the prefix block).
    var subscription: KeyPrefixes

    // MARK: Writing

    /// Writes the header of a new file made with `options` into `raw`, the
    /// file's first bytes: the fields, a random file identifier, the prefix
    /// block when the file subscribes, and the header checksum.
    ///
    /// - Precondition: `options` were validated (``SharedStateFile/Options/problem``),
    ///   and `raw` holds at least ``FileLayout/headerSize`` zeroed bytes.
    static func write(for options: SharedStateFile.Options, into raw: UnsafeMutableRawBufferPointer) {
        let subscription = KeyPrefixes(canonicalizing: options.subscribedPrefixes)
        let slots = options.readerSlotCount
        let heapStart = FileLayout.heapStart(readerSlotCount: slots)
        raw.storeBytes(of: FileLayout.magic.littleEndian, toByteOffset: FileLayout.magicOffset, as: UInt64.self)
        let version = subscription.isEverything ? FileLayout.plainFormatVersion : FileLayout.subscribedFormatVersion
        raw.storeBytes(of: version.littleEndian, toByteOffset: FileLayout.formatVersionOffset, as: UInt32.self)
        raw.storeBytes(of: UInt32(slots).littleEndian, toByteOffset: FileLayout.readerSlotCountOffset, as: UInt32.self)
        raw.storeBytes(of: UInt64(options.maximumFileSize).littleEndian, toByteOffset: FileLayout.mapSizeOffset, as: UInt64.self)
        raw.storeBytes(of: UInt64(heapStart).littleEndian, toByteOffset: FileLayout.heapStartOffset, as: UInt64.self)
        var generator = SystemRandomNumberGenerator()
        raw.storeBytes(of: generator.next(), toByteOffset: FileLayout.fileIdentifierOffset, as: UInt64.self)
        raw.storeBytes(of: generator.next(), toByteOffset: FileLayout.fileIdentifierOffset + 8, as: UInt64.self)
        var flags: UInt32 = (options.durability == .systemCrash ? FileLayout.creationFlagDurable : 0)
            | FileLayout.creationFlagTaggedFreeLists | FileLayout.creationFlagChecksummedRetireLists
        if !subscription.isEverything {
            flags |= FileLayout.creationFlagSubscribed
            writePrefixBlock(subscription.prefixes, into: raw)
        }
        raw.storeBytes(of: flags.littleEndian, toByteOffset: FileLayout.creationFlagsOffset, as: UInt32.self)
        let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<FileLayout.checksummedHeaderLength]))
        raw.storeBytes(of: checksum.littleEndian, toByteOffset: FileLayout.headerChecksumOffset, as: UInt32.self)
    }

    /// Writes the subscribed-prefix block (docs/FORMAT.md section 1.2) into
    /// the header page of a file being created.
    ///
    /// - Precondition: `prefixes` is canonical, non-empty and within the
    ///   limits of ``FileLayout/maximumSubscribedPrefixCount`` and
    ///   ``FileLayout/maximumSubscribedPrefixBytes``.
    private static func writePrefixBlock(_ prefixes: [[UInt8]], into raw: UnsafeMutableRawBufferPointer) {
        var offset = FileLayout.prefixEntriesOffset
        for prefix in prefixes {
            raw.storeBytes(of: UInt16(prefix.count).littleEndian, toByteOffset: offset, as: UInt16.self)
            offset += FileLayout.prefixLengthSize
            UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + prefix.count]).copyBytes(from: prefix)
            offset += prefix.count
        }
        raw.storeBytes(of: UInt32(prefixes.count).littleEndian, toByteOffset: FileLayout.prefixCountOffset, as: UInt32.self)
        raw.storeBytes(
            of: UInt32(offset - FileLayout.prefixEntriesOffset).littleEndian, toByteOffset: FileLayout.prefixEntriesLengthOffset,
            as: UInt32.self)
        let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[FileLayout.prefixBlockOffset..<offset]))
        raw.storeBytes(of: checksum.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    // MARK: Validating

    /// Validates the header page `header` of a file of `fileSize` bytes, of
    /// which `readCount` bytes could be read (the rest of `header` is
    /// zeros): magic, format version, checksum, creation flags, geometry
    /// against the file's size, and the subscribed-prefix block. Errors name `path`.
    ///
    /// - Throws: ``StateFileError/notAStateFile(path:)``, `truncated`,
    ///   `unsupportedFormatVersion`, `unsupportedCreationFlags` or `corrupted`.
    init(validating header: [UInt8], readCount: Int, fileSize: Int, path: String) throws(StateFileError) {
        guard readCount >= 8, fileSize >= 8, header.count >= FileLayout.headerSize else { throw .notAStateFile(path: path) }
        self = try header.withUnsafeBytes { raw in
            Result { () throws(StateFileError) in try Self(validating: raw, readCount: readCount, fileSize: fileSize, path: path) }
        }.get()
    }

    /// ``init(validating:readCount:fileSize:path:)`` on the header page's bytes.
    ///
    /// - Precondition: `raw` holds at least ``FileLayout/headerSize`` bytes.
    private init(validating raw: UnsafeRawBufferPointer, readCount: Int, fileSize: Int, path: String) throws(StateFileError) {
        func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard load(UInt64.self, at: FileLayout.magicOffset) == FileLayout.magic else { throw .notAStateFile(path: path) }
        guard readCount >= FileLayout.headerSize, fileSize >= FileLayout.headerSize else {
            throw .truncated(path: path, size: fileSize, required: FileLayout.headerSize)
        }
        let version = load(UInt32.self, at: FileLayout.formatVersionOffset)
        let stored = load(UInt32.self, at: FileLayout.headerChecksumOffset)
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<FileLayout.checksummedHeaderLength]))
        let known = FileLayout.oldestFormatVersion...FileLayout.newestFormatVersion
        guard stored == actual else {
            // A different version may lay the header out differently; say so first.
            if !known.contains(version) {
                throw .unsupportedFormatVersion(path: path, found: version, supported: FileLayout.newestFormatVersion)
            }
            throw .corrupted(path: path, reason: "header checksum mismatch")
        }
        guard known.contains(version) else {
            throw .unsupportedFormatVersion(path: path, found: version, supported: FileLayout.newestFormatVersion)
        }
        let flags = load(UInt32.self, at: FileLayout.creationFlagsOffset)
        guard flags & ~FileLayout.knownCreationFlags == 0 else {
            throw .unsupportedCreationFlags(path: path, flags: flags)
        }
        let subscribed = flags & FileLayout.creationFlagSubscribed != 0
        guard subscribed == (version == FileLayout.subscribedFormatVersion) else {
            throw .corrupted(path: path, reason: "creation flags 0x\(String(flags, radix: 16)) do not match format version \(version)")
        }
        let slots = Int(load(UInt32.self, at: FileLayout.readerSlotCountOffset))
        let mapSize = load(UInt64.self, at: FileLayout.mapSizeOffset)
        let heapStart = load(UInt64.self, at: FileLayout.heapStartOffset)
        guard slots >= 1, slots <= FileLayout.maximumReaderSlotCount,
            heapStart == UInt64(FileLayout.heapStart(readerSlotCount: slots)),
            mapSize >= heapStart, mapSize <= UInt64(SharedStateFile.Options.largestMaximumFileSize)
        else {
            throw .corrupted(path: path, reason: "impossible header geometry")
        }
        guard fileSize >= Int(heapStart) + FileLayout.commitRecordSize else {
            throw .truncated(path: path, size: fileSize, required: Int(heapStart) + FileLayout.commitRecordSize)
        }
        guard fileSize <= Int(mapSize) else {
            throw .corrupted(path: path, reason: "file is larger than its maximum size")
        }
        self.formatVersion = version
        self.readerSlotCount = slots
        self.mapSize = Int(mapSize)
        self.heapStart = Int(heapStart)
        self.durable = flags & FileLayout.creationFlagDurable != 0
        self.taggedFreeLists = flags & FileLayout.creationFlagTaggedFreeLists != 0
        self.checksummedRetireLists = flags & FileLayout.creationFlagChecksummedRetireLists != 0
        self.subscription = subscribed ? try Self.readPrefixBlock(raw, path: path) : .everything
    }

    /// Reads and checks the subscribed-prefix block of a header page: its
    /// bounds before its checksum, its checksum before its entries, and then
    /// that the entries fill it exactly and are canonical and within the limits.
    private static func readPrefixBlock(_ raw: UnsafeRawBufferPointer, path: String) throws(StateFileError) -> KeyPrefixes {
        func damaged(_ reason: String) -> StateFileError { .corrupted(path: path, reason: "subscribed prefixes: \(reason)") }
        let count = Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.prefixCountOffset, as: UInt32.self)))
        let entriesLength = Int(UInt32(littleEndian: raw.load(fromByteOffset: FileLayout.prefixEntriesLengthOffset, as: UInt32.self)))
        let maximumEntriesLength = FileLayout.maximumSubscribedPrefixCount * FileLayout.prefixLengthSize
            + FileLayout.maximumSubscribedPrefixBytes
        guard (1...FileLayout.maximumSubscribedPrefixCount).contains(count), entriesLength <= maximumEntriesLength else {
            throw damaged("impossible count \(count) or length \(entriesLength)")
        }
        let end = FileLayout.prefixEntriesOffset + entriesLength
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: end, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[FileLayout.prefixBlockOffset..<end])) else {
            throw damaged("checksum mismatch")
        }
        var prefixes: [[UInt8]] = []
        var offset = FileLayout.prefixEntriesOffset
        for _ in 0..<count {
            guard offset + FileLayout.prefixLengthSize <= end else { throw damaged("the entries overrun the block") }
            let length = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            offset += FileLayout.prefixLengthSize
            guard length >= 1, KeyPrefixes.lengthProblem(length) == nil, offset + length <= end else {
                throw damaged("impossible prefix length \(length)")
            }
            prefixes.append(Array(raw[offset..<offset + length]))
            offset += length
        }
        guard offset == end, offset - FileLayout.prefixEntriesOffset - count * FileLayout.prefixLengthSize
            <= FileLayout.maximumSubscribedPrefixBytes
        else {
            throw damaged("the entries do not fill the block")
        }
        let subscription = KeyPrefixes(canonicalizing: prefixes)
        guard subscription.prefixes == prefixes else { throw damaged("not sorted, or one starts another") }
        return subscription
    }
}
