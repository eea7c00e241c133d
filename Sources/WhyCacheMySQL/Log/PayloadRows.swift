import WhyCache

/// How a payload is stored in rows: a head row (part 0) holding the size and
/// CRC32C of the whole payload, and the payload cut into parts of at most
/// ``MySQLSchema/partSize`` bytes, one per row.
///
/// The log and the checkpoint payload tables store payloads the same way,
/// and both read them back through ``PayloadAssembler``.
enum PayloadRows {
    /// The parts of `payload`: at least one (an empty payload has one empty part).
    static func parts(of payload: [UInt8]) -> [ArraySlice<UInt8>] {
        guard payload.count > MySQLSchema.partSize else { return [payload[...]] }
        return stride(from: 0, to: payload.count, by: MySQLSchema.partSize).map { start in
            payload[start..<min(start + MySQLSchema.partSize, payload.count)]
        }
    }

    /// The CRC32C of `payload`, stored in its head row.
    static func checksum(of payload: [UInt8]) -> UInt64 {
        UInt64(CRC32C.checksum(payload))
    }
}

/// Joins the part rows of payloads, read in (id, part) order, back into
/// whole payloads, checking sizes, part numbers and checksums.
struct PayloadAssembler {
    /// Where the rows come from, for error messages ("db.table").
    let location: String

    private var current: (id: UInt64, size: Int, checksum: UInt32, bytes: [UInt8], nextPart: UInt64)?

    /// The payloads completed so far, with their ids.
    private(set) var completed: [(id: UInt64, payload: [UInt8])] = []

    /// The first damage found; rows after it are ignored.
    private(set) var failure: DatastoreError?

    /// The columns a part row is read as: id (or sequence), part,
    /// payload_size, checksum, bytes.
    static let rowColumns: [MySQLColumnKind] = [.unsigned, .unsigned, .unsigned, .unsigned, .bytes]

    /// Adds a row read with ``rowColumns``. After the first damaged row,
    /// records ``failure`` and ignores the rest.
    mutating func add(row: [MySQLValue]) {
        guard failure == nil else { return }
        do throws(DatastoreError) {
            try add(
                id: row[0].unsignedValue ?? 0, part: row[1].unsignedValue ?? 0, size: row[2].unsignedValue ?? 0,
                checksum: row[3].unsignedValue ?? 0, bytes: row[4].bytesValue ?? [])
        } catch {
            failure = error
        }
    }

    /// Checks the last payload; afterwards ``completed`` holds every whole,
    /// valid payload before the first damage, and ``failure`` the damage.
    mutating func finishRows() {
        guard failure == nil else { return }
        do throws(DatastoreError) {
            try finishCurrent()
        } catch {
            failure = error
        }
    }

    init(location: String) {
        self.location = location
    }

    /// Adds the next row.
    ///
    /// - Throws: ``DatastoreError/corruptRecord(location:updateID:reason:)``
    ///   when a part is missing or out of order, or a payload is longer than
    ///   its head row says.
    private mutating func add(id: UInt64, part: UInt64, size: UInt64, checksum: UInt64, bytes: [UInt8]) throws(DatastoreError) {
        if part == 0 {
            try finishCurrent()
            guard size <= UInt64(WhyCacheLimits.maximumRecordSize), checksum <= UInt64(UInt32.max) else {
                throw .corruptRecord(location: location, updateID: id, reason: "the head row claims \(size) bytes and checksum \(checksum)")
            }
            var payload = bytes
            payload.reserveCapacity(Int(size))
            current = (id, Int(size), UInt32(checksum), payload, 1)
        } else {
            guard var open = current, open.id == id, open.nextPart == part else {
                throw .corruptRecord(location: location, updateID: id, reason: "part \(part) has no head row or comes out of order")
            }
            current = nil  // so that `open` holds the only reference and appending does not copy
            open.bytes += bytes
            open.nextPart += 1
            current = open
        }
        if let open = current, open.bytes.count > open.size {
            throw .corruptRecord(location: location, updateID: id, reason: "the parts hold more than the \(open.size) bytes the head row declares")
        }
    }

    private mutating func finishCurrent() throws(DatastoreError) {
        guard let open = current else { return }
        current = nil
        guard open.bytes.count == open.size else {
            throw .corruptRecord(location: location, updateID: open.id, reason: "\(open.bytes.count) of \(open.size) bytes are stored (a part is missing)")
        }
        let computed = CRC32C.checksum(open.bytes)
        guard computed == open.checksum else {
            throw .corruptRecord(location: location, updateID: open.id, reason: "checksum mismatch (stored \(open.checksum), computed \(computed))")
        }
        completed.append((open.id, open.bytes))
    }
}
