import Glibc

/// The published checkpoint files of a file datastore: finding, describing,
/// reading and removing them.
///
/// A checkpoint file is a ``FileHeader`` of kind ``FileHeader/Kind/checkpoint``
/// (value: the update id), one ``LogFrame`` per payload (the frame's id field
/// holds the payload's 1-based number), and a 32-byte footer:
///
/// ```text
/// offset size  field
///      0    8  magic "WCCKPEND"
///      8    8  payload count, u64 little-endian
///     16    8  total payload bytes, u64 little-endian
///     24    4  CRC-32C of bytes 0..<24, u32 little-endian
///     28    4  reserved, zero
/// ```
///
/// Only complete files are ever renamed to a checkpoint name, so a published
/// checkpoint has no torn tail: any invalid frame is corruption.
enum CheckpointFile {
    /// The size of the footer, in bytes.
    static let footerSize = 32

    /// The footer's magic.
    static let footerMagic = Array("WCCKPEND".utf8)

    /// The footer recording `recordCount` payloads of `byteCount` bytes in total.
    static func footer(recordCount: UInt64, byteCount: UInt64) -> [UInt8] {
        var bytes = footerMagic
        bytes.appendLittleEndian(recordCount)
        bytes.appendLittleEndian(byteCount)
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        bytes.appendLittleEndian(UInt32(0))
        return bytes
    }

    /// The newest published checkpoint of `layout`, if any.
    static func latest(in layout: FileDatastoreLayout) throws(DatastoreError) -> CheckpointInfo? {
        // A checkpoint may be removed between listing and opening; try older ones then.
        for updateID in try layout.checkpointIDs().reversed() {
            do {
                let file = try DatastoreFile.open(layout.checkpointPath(updateID), flags: O_RDONLY)
                defer { file.close() }
                return try describe(file, updateID: updateID)
            } catch .ioFailure(_, _, ENOENT) {
                continue
            }
        }
        return nil
    }

    /// Reads and checks the header and footer of the checkpoint file `file`.
    static func describe(_ file: DatastoreFile, updateID: UInt64) throws(DatastoreError) -> CheckpointInfo {
        let size = try file.size()
        switch FileHeader.decode(try file.read(count: FileHeader.size, at: 0), expecting: .checkpoint) {
        case .success(let header) where header.value == updateID:
            // No record can follow a checkpoint at the last id (no frame may
            // carry it either, FORMAT.md §3.5): only damage names it.
            guard updateID < UInt64.max else {
                throw .corruptRecord(location: file.path, updateID: updateID, reason: "a checkpoint cannot be at the last update id")
            }
        case .success(let header):
            throw .corruptRecord(location: file.path, updateID: updateID, reason: "the header names update \(header.value)")
        case .failure(let failure):
            throw .corruptRecord(location: file.path, updateID: updateID, reason: "invalid checkpoint header: \(failure)")
        }
        guard size >= FileHeader.size + footerSize else {
            throw .corruptRecord(location: file.path, updateID: updateID, reason: "the file is too short for a footer")
        }
        let footer = try file.read(count: footerSize, at: size - footerSize)
        guard footer.count == footerSize, footer.starts(with: footerMagic),
              footer.loadLittleEndian(UInt32.self, at: 24) == CRC32C.checksum(footer[0..<24])
        else {
            throw .corruptRecord(location: "\(file.path) at byte \(size - footerSize)", updateID: updateID, reason: "invalid checkpoint footer")
        }
        return CheckpointInfo(
            updateID: updateID,
            recordCount: footer.loadLittleEndian(UInt64.self, at: 8),
            byteCount: footer.loadLittleEndian(UInt64.self, at: 16)
        )
    }

    /// One page of the payloads of `checkpoint`, from `position`.
    static func read(
        _ checkpoint: CheckpointInfo, in layout: FileDatastoreLayout, from position: CheckpointPosition,
        limits: DatastorePageLimits, chunkSize: Int
    ) throws(DatastoreError) -> (payloads: [[UInt8]], next: CheckpointPosition?) {
        let path = layout.checkpointPath(checkpoint.updateID)
        guard let file = try DatastoreFile.openIfExists(path, flags: O_RDONLY) else {
            throw .checkpointNotFound(updateID: checkpoint.updateID)
        }
        defer { file.close() }
        // A checkpoint republished at the same id is a different one.
        guard try describe(file, updateID: checkpoint.updateID) == checkpoint else {
            throw .checkpointNotFound(updateID: checkpoint.updateID)
        }
        let end = try file.size() - footerSize
        let start = position.offset == 0 ? FileHeader.size : Int(clamping: position.offset)
        guard start >= FileHeader.size, start <= end, position.index <= checkpoint.recordCount else {
            throw .invalidRequest(reason: "position \(position) is not in checkpoint \(checkpoint.updateID)")
        }
        var scanner = try FrameScanner(file: file, offset: start, nextID: position.index + 1, end: end, chunkSize: chunkSize)
        var payloads: [[UInt8]] = []
        var bytes = 0
        while payloads.count < limits.maximumCount && bytes < limits.maximumBytes && scanner.offset < end {
            switch try scanner.next(wantPayload: true) {
            case .frame(_, _, _, _, let payload):
                let payload = payload ?? []
                payloads.append(payload)
                bytes += payload.count
            case .end:
                break
            case .invalid(let reason, _):
                throw .corruptRecord(location: "\(path) at byte \(scanner.offset)", updateID: checkpoint.updateID, reason: reason)
            }
        }
        guard scanner.offset == end else {
            return (payloads, CheckpointPosition(index: scanner.nextID - 1, offset: UInt64(scanner.offset)))
        }
        // The last page, however full it is: the frames must be the ones the footer counts.
        guard scanner.nextID - 1 == checkpoint.recordCount else {
            throw .corruptRecord(
                location: path, updateID: checkpoint.updateID,
                reason: "the footer promises \(checkpoint.recordCount) payloads, the file holds \(scanner.nextID - 1)")
        }
        return (payloads, nil)
    }
}
