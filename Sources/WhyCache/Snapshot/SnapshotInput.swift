/// The reading end of a snapshot stream: a buffer over a
/// ``SnapshotByteSource`` from which the reader takes fixed fields, varints
/// and byte strings, keeping the running checksum of what it consumed.
///
/// Invariants: `buffer[start..<end]` holds the bytes read from the source and
/// not consumed yet; `offset` counts the bytes consumed, and `checksum`
/// covers exactly those that were consumed with `checksummed: true`. The
/// buffer starts at ``SnapshotFormat/firstReadSize`` bytes, doubles after
/// every read that filled it up to ``SnapshotFormat/bufferSize``, and beyond that
/// grows, by doubling as the bytes arrive, only to hold the largest single
/// item asked for (a header of at most 16 MiB, a value of at most 64 MiB),
/// so memory stays bounded.
final class SnapshotInput {
    private let source: SnapshotByteSource
    private var buffer = [UInt8](repeating: 0, count: SnapshotFormat.firstReadSize)
    private var start = 0
    private var end = 0
    private var sourceEnded = false
    /// Whether the last read took all the room the buffer had.
    private var lastReadFilledBuffer = false

    /// The checksum of the bytes consumed so far.
    private(set) var checksum = CRC32C()
    /// The stream offset of the next byte: the bytes consumed so far.
    private(set) var offset: UInt64 = 0
    /// How many times the buffer was refilled; a caller reports progress
    /// when it changes.
    private(set) var refills = 0

    /// The bytes taken from the caller's source so far.
    var transferredBytes: UInt64 { source.transferredBytes }

    init(source: SnapshotByteSource) {
        self.source = source
    }

    /// Calls `body` with the next `count` bytes, or with all that are left
    /// when the input ends first, without consuming them.
    func peek<Result>(_ count: Int, _ body: (UnsafeRawBufferPointer) throws(SnapshotError) -> Result) throws(SnapshotError) -> Result {
        _ = try fill(count)
        return try buffer.withUnsafeBytesTyped { (whole) throws(SnapshotError) in
            try body(UnsafeRawBufferPointer(rebasing: whole[start..<min(end, start + count)]))
        }
    }

    /// Consumes the next `count` bytes and calls `body` with them; they stay
    /// valid during the call only.
    ///
    /// - Throws: ``SnapshotError/truncated(offset:)`` when the input ends first.
    func read<Result>(
        _ count: Int, checksummed: Bool = true, _ body: (UnsafeRawBufferPointer) throws(SnapshotError) -> Result
    ) throws(SnapshotError) -> Result {
        guard try fill(count) else { throw .truncated(offset: offset + UInt64(end - start)) }
        let first = start
        start += count
        offset += UInt64(count)
        return try buffer.withUnsafeBytesTyped { (whole) throws(SnapshotError) in
            let bytes = UnsafeRawBufferPointer(rebasing: whole[first..<first + count])
            if checksummed { checksum.update(bytes) }
            return try body(bytes)
        }
    }

    /// Consumes a varint (``LEB128``).
    ///
    /// - Throws: ``SnapshotError/truncated(offset:)``, or
    ///   ``SnapshotError/corrupt(offset:reason:)`` for a varint longer than
    ///   its shortest form or beyond 64 bits.
    func readVarint() throws(SnapshotError) -> UInt64 {
        let at = offset
        let (value, length) = try peek(LEB128.maximumSize) { (bytes) throws(SnapshotError) in
            var length = 0
            do throws(LEB128.ReadFailure) {
                return (try LEB128.read(bytes, at: &length), length)
            } catch .truncated {
                // `peek` had up to ten bytes: fewer only at the end of the input.
                throw .truncated(offset: at + UInt64(bytes.count))
            } catch {
                throw .corrupt(offset: at, reason: "a varint is longer than its shortest form or exceeds 64 bits")
            }
        }
        try read(length) { _ in }
        return value
    }

    /// Whether the input has no byte left.
    func isAtEnd() throws(SnapshotError) -> Bool {
        try !fill(1)
    }

    /// Reads from the source until `count` bytes are buffered past `start`;
    /// false when the input ends first (everything left is buffered then).
    ///
    /// The buffer grows only by doubling, and only when a read took all the
    /// room it had (the source has more ready: a file or a fast pipe) or the
    /// bytes already read fill it: an item whose
    /// damaged length promises 64 MiB costs memory in proportion to the
    /// bytes that actually arrive before the input ends, not to the promise.
    private func fill(_ count: Int) throws(SnapshotError) -> Bool {
        while end - start < count {
            if sourceEnded { return false }
            if buffer.count - start < count && start > 0 {
                // Make room: move the unconsumed bytes to the front.
                let remaining = end - start
                buffer.withUnsafeMutableBytes { whole in
                    // A memmove: the ranges may overlap.
                    UnsafeMutableRawBufferPointer(rebasing: whole[..<remaining])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: whole[start..<end]))
                }
                start = 0
                end = remaining
            }
            if end == buffer.count || (lastReadFilledBuffer && buffer.count < SnapshotFormat.bufferSize) {
                // Full of unconsumed bytes (start is 0 then, and the item is
                // longer than the buffer), or a source with more ready than
                // the last read could take: double, towards full-size reads
                // or the item's size.
                let size = min(buffer.count * 2, max(count, SnapshotFormat.bufferSize))
                buffer.append(contentsOf: repeatElement(0, count: size - buffer.count))
            }
            let room = buffer.count - end
            let read = try buffer.withUnsafeMutableBytesTyped { (whole) throws(SnapshotError) in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: whole[end...]))
            }
            end += read
            sourceEnded = read == 0
            lastReadFilledBuffer = read == room
            refills += 1
        }
        return true
    }
}
