/// The constants and size arithmetic of the log record format, version 1.
///
/// ```text
/// record    := version:u8  count:varint  operation{count}  crc:u32le
/// operation := header:varint  [valueLength:varint if kind == set]  key  [value]
/// header    := keyLength << 2 | kind          (kind: 0 = set, 1 = delete)
/// ```
///
/// `crc` is the CRC-32C of every byte before it. Varints are unsigned LEB128
/// in their shortest form. `docs/FORMAT.md` describes the format byte by byte.
@usableFromInline
package enum LogRecordFormat {
    /// The format version written in the first byte of every record.
    @usableFromInline
    static let version: UInt8 = 1

    /// The number of low header bits that hold the operation kind.
    @usableFromInline
    static let kindBits = 2

    /// The size of the trailing checksum.
    package static let checksumSize = 4

    /// The trailing checksum of the record in `bytes` — its last four bytes,
    /// little-endian — which identifies its contents (docs/FORMAT.md section
    /// 1.7, ``LogPage/precedingRecordChecksum``); nil for fewer than four
    /// bytes. Nothing is validated: for bytes of unknown origin, this is
    /// only what their last four bytes say.
    package static func trailingChecksum(of bytes: some Collection<UInt8>) -> UInt32? {
        guard bytes.count >= checksumSize else { return nil }
        return bytes.suffix(checksumSize).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The smallest possible record: version, a one-byte count, a one-byte
    /// header, a one-byte key, and the checksum.
    static let minimumRecordSize = 1 + 1 + 1 + 1 + checksumSize

    /// The bytes a record spends besides its operations when it holds `count` of them.
    static func fixedOverhead(operationCount count: Int) -> Int {
        1 + LEB128.size(of: UInt64(count)) + checksumSize
    }

    /// The bytes an operation with these lengths occupies inside a record.
    static func encodedSize(kind: LogOperationKind, keyLength: Int, valueLength: Int) -> Int {
        let header = LEB128.size(of: UInt64(keyLength) << kindBits)
        switch kind {
        case .set: return header + LEB128.size(of: UInt64(valueLength)) + keyLength + valueLength
        case .delete: return header + keyLength
        }
    }

    /// The bytes `operation` occupies inside a record.
    static func encodedSize(of operation: LogOperation) -> Int {
        switch operation {
        case .set(let key, let value): encodedSize(kind: .set, keyLength: key.count, valueLength: value.count)
        case .delete(let key): encodedSize(kind: .delete, keyLength: key.count, valueLength: 0)
        }
    }

    /// Checks the key and value lengths of `operation` against ``/WhyCacheSupport/WhyCacheLimits``.
    static func validate(_ operation: LogOperation, index: Int) throws(LogRecordError) {
        let keyLength = operation.key.count
        guard keyLength >= WhyCacheLimits.minimumKeyLength else { throw .emptyKey(operationIndex: index) }
        guard keyLength <= WhyCacheLimits.maximumKeyLength else {
            throw .keyTooLong(operationIndex: index, length: keyLength)
        }
        if case .set(_, let value) = operation, value.count > WhyCacheLimits.maximumValueLength {
            throw .valueTooLong(operationIndex: index, length: value.count)
        }
    }

    /// Encodes already validated operations into one record.
    ///
    /// - Precondition: `operations` is non-empty and every operation passed
    ///   ``validate(_:index:)``; `bodySize` is the sum of their encoded sizes.
    static func encode(_ operations: some Collection<LogOperation>, bodySize: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixedOverhead(operationCount: operations.count) + bodySize)
        bytes.append(version)
        LEB128.append(UInt64(operations.count), to: &bytes)
        for operation in operations {
            switch operation {
            case .set(let key, let value):
                LEB128.append(UInt64(key.count) << kindBits | UInt64(LogOperationKind.set.rawValue), to: &bytes)
                LEB128.append(UInt64(value.count), to: &bytes)
                bytes.append(contentsOf: key)
                bytes.append(contentsOf: value)
            case .delete(let key):
                LEB128.append(UInt64(key.count) << kindBits | UInt64(LogOperationKind.delete.rawValue), to: &bytes)
                bytes.append(contentsOf: key)
            }
        }
        let checksum = CRC32C.checksum(bytes)
        withUnsafeBytes(of: checksum.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
