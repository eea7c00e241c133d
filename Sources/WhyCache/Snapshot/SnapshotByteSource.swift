/// The bytes of a snapshot stream, from a caller's source that holds either
/// the stream itself or a gzip stream of it.
///
/// Which one is decided by the input's first two bytes: `1f 8b` starts every
/// gzip stream and no snapshot (whose first byte is `W`). The bytes read to
/// decide are not lost: they are the first input of the decompressor, or the
/// first bytes delivered.
final class SnapshotByteSource {
    private let source: SnapshotSource
    private let decompressor: GzipDecompressor?
    /// Bytes taken from the source to recognise gzip and not delivered yet
    /// (plain input only).
    private var pending: [UInt8]

    /// The bytes taken from the caller's source so far.
    private(set) var transferredBytes: UInt64 = 0
    /// The stream bytes delivered so far.
    private(set) var deliveredBytes: UInt64 = 0

    /// Reads the first bytes of `source` to recognise gzip input.
    ///
    /// - Throws: what `source` throws; ``SnapshotError/compression(reason:)``.
    init(source: @escaping SnapshotSource) throws(SnapshotError) {
        self.source = source
        let magic = SnapshotFormat.gzipMagic
        var first = [UInt8](repeating: 0, count: magic.count)
        var count = 0
        while count < first.count {
            let read = try first.withUnsafeMutableBytesTyped { (buffer) throws(SnapshotError) in
                try Self.pull(from: source, into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
            }
            if read == 0 { break }
            count += read
        }
        first.removeSubrange(count...)
        transferredBytes = UInt64(count)
        if first == magic {
            decompressor = try GzipDecompressor(firstBytes: first)
            pending = []
        } else {
            decompressor = nil
            pending = first
        }
    }

    /// Fills the start of `buffer` with the next bytes of the stream and
    /// returns how many (at least one), or 0 at its end.
    ///
    /// - Precondition: `buffer` is not empty and lies in the storage of a `[UInt8]`.
    /// - Throws: ``SnapshotError/truncated(offset:)`` when the input ends
    ///   inside a gzip member, ``SnapshotError/compression(reason:)`` for
    ///   damaged gzip input, and what the source throws.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SnapshotError) -> Int {
        let count: Int
        if !pending.isEmpty {
            count = min(pending.count, buffer.count)
            buffer.copyBytes(from: pending[..<count])
            pending.removeFirst(count)
        } else if let decompressor {
            let outcome = try decompressor.read(into: buffer) { (compressed) throws(SnapshotError) in
                let count = try Self.pull(from: source, into: compressed)
                transferredBytes += UInt64(count)
                return count
            }
            switch outcome {
            case .bytes(let produced): count = produced
            case .end: count = 0
            case .truncated: throw .truncated(offset: deliveredBytes)
            }
        } else {
            count = try Self.pull(from: source, into: buffer)
            transferredBytes += UInt64(count)
        }
        deliveredBytes += UInt64(count)
        return count
    }

    /// Calls `source` and checks its answer, which the caller wrote.
    private static func pull(from source: SnapshotSource, into buffer: UnsafeMutableRawBufferPointer) throws(SnapshotError) -> Int {
        let count = try source(buffer)
        guard count >= 0, count <= buffer.count else {
            throw .invalidArgument(reason: "the source reported \(count) bytes read into a buffer of \(buffer.count)")
        }
        return count
    }
}
