/// The writing end of a snapshot stream: gathers what the writer appends in
/// one buffer of ``SnapshotFormat/bufferSize`` bytes, keeps the running
/// checksum of the stream, and hands each full buffer to the sink, through
/// a gzip compressor when asked. Memory stays bounded whatever the size of
/// the state: one buffer and one compressor.
final class SnapshotOutput {
    private var buffer = [UInt8](repeating: 0, count: SnapshotFormat.bufferSize)
    /// The bytes of `buffer` in use.
    private var used = 0
    private var checksum = CRC32C()
    private var scratch: [UInt8] = []
    private let compressor: GzipCompressor?
    private let sink: SnapshotSink

    /// The length of the stream appended so far, before compression.
    private(set) var streamBytes: UInt64 = 0
    /// The bytes handed to the sink so far.
    private(set) var transferredBytes: UInt64 = 0
    /// How many times the buffer went to the sink; a caller reports progress
    /// when it changes.
    private(set) var flushes = 0

    /// An output to `sink`, compressed as `compression` says.
    ///
    /// - Throws: ``SnapshotError/invalidArgument(reason:)`` for a bad gzip
    ///   level, ``SnapshotError/compression(reason:)``.
    init(compression: SnapshotCompression, sink: @escaping SnapshotSink) throws(SnapshotError) {
        switch compression {
        case .none: compressor = nil
        case .gzip(let level): compressor = try GzipCompressor(level: level)
        }
        self.sink = sink
        scratch.reserveCapacity(LEB128.maximumSize)
    }

    /// Appends `bytes` to the stream and to its checksum.
    func append(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) {
        checksum.update(bytes)
        try store(bytes)
    }

    /// Appends `bytes` to the stream and to its checksum.
    func append(_ bytes: [UInt8]) throws(SnapshotError) {
        try bytes.withUnsafeBytesTyped { (bytes) throws(SnapshotError) in try append(bytes) }
    }

    /// Appends one entry: key length, key, value length, value.
    func appendEntry(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(SnapshotError) {
        try appendVarint(UInt64(key.count))
        try append(key)
        try appendVarint(UInt64(value.count))
        try append(value)
    }

    /// Appends the trailer (magic, `keyCount`, the checksum of everything
    /// before the checksum), then hands everything left, and the end of the
    /// gzip member, to the sink.
    func finish(keyCount: Int) throws(SnapshotError) {
        var trailer = SnapshotFormat.trailerMagic
        trailer.appendLittleEndian(UInt64(keyCount))
        try append(trailer)
        try withUnsafeBytes(of: checksum.value.littleEndian) { (bytes) throws(SnapshotError) in try store(bytes) }
        try flush()
        try compressor?.finish { (bytes) throws(SnapshotError) in try deliver(bytes) }
    }

    private func appendVarint(_ value: UInt64) throws(SnapshotError) {
        scratch.removeAll(keepingCapacity: true)
        LEB128.append(value, to: &scratch)
        try append(scratch)
    }

    /// Copies `bytes` into the buffer, flushing it each time it fills.
    private func store(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) {
        streamBytes += UInt64(bytes.count)
        var rest = bytes
        while !rest.isEmpty {
            if used == buffer.count { try flush() }
            let count = min(buffer.count - used, rest.count)
            buffer.withUnsafeMutableBytes { whole in
                UnsafeMutableRawBufferPointer(rebasing: whole[used..<used + count])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[..<count]))
            }
            used += count
            rest = UnsafeRawBufferPointer(rebasing: rest[count...])
        }
    }

    /// Hands the buffered bytes to the sink (through the compressor).
    private func flush() throws(SnapshotError) {
        guard used > 0 else { return }
        try buffer.withUnsafeBytesTyped { (whole) throws(SnapshotError) in
            let bytes = UnsafeRawBufferPointer(rebasing: whole[..<used])
            if let compressor {
                try compressor.compress(bytes) { (compressed) throws(SnapshotError) in try deliver(compressed) }
            } else {
                try deliver(bytes)
            }
        }
        used = 0
        flushes += 1
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) {
        try sink(bytes)
        transferredBytes += UInt64(bytes.count)
    }
}
