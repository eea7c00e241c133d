/// A validated, zero-copy view of one encoded log record.
///
/// This is the decoder of the apply path: it checks a record once (version,
/// checksum and structure) and then hands out its operations as borrowed
/// buffers, without allocating anything per operation.
///
/// ```swift
/// try payload.withUnsafeBytes { bytes in
///     let record = try LogRecordView(validating: bytes)
///     record.forEachOperation { kind, key, value in
///         // `key` and `value` point into `bytes`; copy them to keep them.
///     }
/// }
/// ```
///
/// The view does not own or retain its bytes. Whoever creates it must keep the
/// memory alive and unchanged for as long as the view (or any buffer it hands
/// out) is used — in practice, use the view only inside the closure that
/// provides the bytes.
package struct LogRecordView {
    /// The whole encoded record, checksum included.
    ///
    /// Invariant (established by `init(validating:)`): the bytes are a record
    /// of the current version whose checksum matches and whose
    /// `operationCount` operations, starting at `firstOperationOffset`, lie
    /// within the bytes and end exactly at the checksum.
    package let bytes: UnsafeRawBufferPointer

    /// The number of operations in the record (at least one).
    package let operationCount: Int

    /// Where the first operation starts.
    private let firstOperationOffset: Int

    /// Validates `bytes` as one complete log record.
    ///
    /// - Parameter bytes: The encoded record. The caller must keep this memory
    ///   alive and unchanged while the view is in use.
    /// - Throws: ``LogRecordError/truncated(length:)``,
    ///   ``LogRecordError/unsupportedVersion(_:)``,
    ///   ``LogRecordError/checksumMismatch(stored:computed:)`` or
    ///   ``LogRecordError/malformed(offset:reason:)``.
    package init(validating bytes: UnsafeRawBufferPointer) throws(LogRecordError) {
        guard let version = bytes.first else { throw .truncated(length: 0) }
        guard version == LogRecordFormat.version else { throw .unsupportedVersion(version) }
        guard bytes.count >= LogRecordFormat.minimumRecordSize else { throw .truncated(length: bytes.count) }

        let bodyEnd = bytes.count - LogRecordFormat.checksumSize
        let stored = bytes.loadUnaligned(fromByteOffset: bodyEnd, as: UInt32.self).littleEndian
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<bodyEnd]))
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }

        let body = UnsafeRawBufferPointer(rebasing: bytes[..<bodyEnd])
        var offset = 1
        let count = try Self.readVarint(body, at: &offset, what: "operation count")
        guard count >= 1 else { throw .malformed(offset: 1, reason: "the record holds no operations") }
        // Every operation takes at least two bytes, which bounds `count` before it is used.
        guard count <= UInt64(body.count - offset) / 2 else {
            throw .malformed(offset: 1, reason: "operation count \(count) does not fit in \(bytes.count) bytes")
        }
        let firstOperation = offset
        for index in 0..<Int(count) {
            try Self.validateOperation(index, in: body, at: &offset)
        }
        guard offset == bodyEnd else {
            throw .malformed(offset: offset, reason: "\(bodyEnd - offset) unexpected bytes after the last operation")
        }
        self.bytes = bytes
        self.operationCount = Int(count)
        self.firstOperationOffset = firstOperation
    }

    /// Calls `body` with each operation of the record, in order.
    ///
    /// `key` and `value` borrow the record's memory and are valid only during
    /// the call; `value` is empty for ``LogOperationKind/delete``.
    /// Nothing is allocated per operation.
    @inlinable
    package func forEachOperation<Failure: Error>(
        _ body: (_ kind: LogOperationKind, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(Failure) -> Void
    ) throws(Failure) {
        try forEachOperation(announcingKeysAhead: 0, { _ in }, body)
    }

    /// Calls `body` for each operation in order, like
    /// ``forEachOperation(_:)``, and before each call `announce` with the
    /// keys of the operations up to `ahead` places further on that were not
    /// announced yet: every operation but the first is announced once,
    /// `ahead` operations before its own call (or before the first call, for
    /// operations 2 to `ahead`). That is what
    /// `WriteTransaction/prefetchPath(forKeyBytes:)` needs to overlap the
    /// tree walks of a large record's operations. With `ahead` 0 nothing is
    /// announced.
    @inlinable
    package func forEachOperation<Failure: Error>(
        announcingKeysAhead ahead: Int,
        _ announce: (_ key: UnsafeRawBufferPointer) -> Void,
        _ body: (_ kind: LogOperationKind, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(Failure) -> Void
    ) throws(Failure) {
        var cursor = makeCursor()
        // The lead starts past the first operation, which is never announced;
        // `leadIndex` is the operation it reads next.
        var lead = cursor
        var leadIndex = 0
        if ahead > 0 && operationCount > 0 {
            _ = lead.next()
            leadIndex = 1
        }
        for index in 0..<operationCount {
            while ahead > 0 && leadIndex < operationCount && leadIndex <= index + ahead {
                announce(lead.next().key)
                leadIndex += 1
            }
            let operation = cursor.next()
            try body(operation.kind, operation.key, operation.value)
        }
    }

    /// The operations of the record as owned values.
    package var operations: [LogOperation] {
        var result: [LogOperation] = []
        result.reserveCapacity(operationCount)
        forEachOperation { kind, key, value in
            switch kind {
            case .set: result.append(.set(key: Array(key), value: Array(value)))
            case .delete: result.append(.delete(key: Array(key)))
            }
        }
        return result
    }

    /// A cursor at the first operation.
    @usableFromInline
    func makeCursor() -> LogOperationCursor {
        LogOperationCursor(bytes: bytes, offset: firstOperationOffset)
    }

    /// Reads a varint of the record; `what` names it in the error message and
    /// is only built when there is one (it runs once per operation).
    @inline(__always)
    private static func readVarint(
        _ body: UnsafeRawBufferPointer, at offset: inout Int, what: @autoclosure () -> String
    ) throws(LogRecordError) -> UInt64 {
        let start = offset
        do {
            return try LEB128.read(body, at: &offset)
        } catch .truncated {
            throw .malformed(offset: start, reason: "the \(what()) runs past the end of the record")
        } catch {
            throw .malformed(offset: start, reason: "the \(what()) is not a shortest-form 64-bit varint")
        }
    }

    /// Checks the operation at `offset` and advances `offset` past it.
    private static func validateOperation(
        _ index: Int, in body: UnsafeRawBufferPointer, at offset: inout Int
    ) throws(LogRecordError) {
        let start = offset
        let header = try readVarint(body, at: &offset, what: "header of operation \(index)")
        let kindBits = UInt64(1 << LogRecordFormat.kindBits - 1)
        guard let kind = LogOperationKind(rawValue: UInt8(header & kindBits)) else {
            throw .malformed(offset: start, reason: "operation \(index) has unknown kind \(header & kindBits)")
        }
        let keyLength = header >> LogRecordFormat.kindBits
        guard keyLength >= UInt64(WhyCacheLimits.minimumKeyLength),
              keyLength <= UInt64(WhyCacheLimits.maximumKeyLength)
        else {
            throw .malformed(offset: start, reason: "operation \(index) has a \(keyLength)-byte key")
        }
        var valueLength: UInt64 = 0
        if kind == .set {
            valueLength = try readVarint(body, at: &offset, what: "value length of operation \(index)")
            guard valueLength <= UInt64(WhyCacheLimits.maximumValueLength) else {
                throw .malformed(offset: start, reason: "operation \(index) has a \(valueLength)-byte value")
            }
        }
        // Both lengths are bounded above, so the sum cannot overflow.
        let payload = Int(keyLength) + Int(valueLength)
        guard payload <= body.count - offset else {
            throw .malformed(offset: start, reason: "operation \(index) runs past the end of the record")
        }
        offset += payload
    }
}

/// Walks the operations of a validated record without checks.
///
/// Only `LogRecordView` creates cursors, over bytes it has validated, so
/// every read stays inside the record.
@usableFromInline
struct LogOperationCursor {
    @usableFromInline
    let bytes: UnsafeRawBufferPointer

    @usableFromInline
    var offset: Int

    @usableFromInline
    init(bytes: UnsafeRawBufferPointer, offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    /// Decodes the operation at the cursor and moves past it.
    ///
    /// - Precondition: the cursor is at an operation of a validated record.
    @usableFromInline
    mutating func next() -> (kind: LogOperationKind, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let header = readVarint()
        let kindMask = UInt64(1 << LogRecordFormat.kindBits - 1)
        let isDelete = header & kindMask == UInt64(LogOperationKind.delete.rawValue)
        let keyLength = Int(truncatingIfNeeded: header >> LogRecordFormat.kindBits)
        let valueLength = isDelete ? 0 : Int(truncatingIfNeeded: readVarint())
        let key = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + keyLength])
        offset += keyLength
        let value = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + valueLength])
        offset += valueLength
        return (isDelete ? .delete : .set, key, value)
    }

    /// Reads a varint known to be well formed; stops at the end of the bytes.
    @usableFromInline
    @inline(__always)
    mutating func readVarint() -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        return result
    }
}
