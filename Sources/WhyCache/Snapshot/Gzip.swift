import CZlib

// Gzip streams (deflate with the gzip wrapper of RFC 1952, so that `gzip`
// and `gunzip` read and write them) through the system zlib.
//
// This file is the only code that calls zlib or holds a pointer into a
// `z_stream`. Each type owns one `z_stream` through a `ZStream`, which keeps
// it on the heap because zlib keeps a pointer to it in its own state (it must
// never move), starts it when created and ends it when released. zlib is
// given pointers into a buffer only for the duration of one `deflate` or
// `inflate` call, inside the scope that owns the buffer, and the pointers are
// cleared before that scope ends; so no pointer outlives its memory.

/// Compresses a byte stream into one gzip member, handing the compressed
/// bytes to a sink as they are produced (at most 256 KiB at a time).
final class GzipCompressor {
    private let owner: ZStream
    private var stream: UnsafeMutablePointer<z_stream> { owner.stream }
    private var output = [UInt8](repeating: 0, count: 256 << 10)

    /// A compressor at zlib level `level`: 0 (store) ... 9 (smallest).
    ///
    /// - Throws: ``SnapshotError/invalidArgument(reason:)`` for another level,
    ///   ``SnapshotError/compression(reason:)`` when zlib cannot start.
    init(level: Int) throws(SnapshotError) {
        guard (0...9).contains(level) else {
            throw .invalidArgument(reason: "gzip level \(level) is outside 0...9")
        }
        owner = try ZStream(name: "deflateInit2", start: { whycache_deflate_init_gzip($0, Int32(level)) }, end: { deflateEnd($0) })
    }

    /// Compresses `input`; compressed bytes that are ready go to `sink`.
    ///
    /// - Precondition (caller): `input` lies in memory bound to `UInt8`
    ///   (the storage of a `[UInt8]`), is at most 4 GiB, and stays valid for
    ///   the call; zlib only reads it, and only during the call.
    func compress(_ input: UnsafeRawBufferPointer, to sink: SnapshotSink) throws(SnapshotError) {
        try run(input, flush: Z_NO_FLUSH, to: sink)
    }

    /// Ends the gzip member (the rest of the compressed data, then the CRC-32
    /// and length trailer of RFC 1952) and hands it to `sink`.
    func finish(to sink: SnapshotSink) throws(SnapshotError) {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, to: sink)
    }

    /// Runs `deflate` over `input` until it is consumed (and, with
    /// `Z_FINISH`, until the member is complete), emptying the output buffer
    /// into `sink` whenever zlib filled it.
    ///
    /// - Precondition (caller): as ``compress(_:to:)``.
    private func run(_ input: UnsafeRawBufferPointer, flush: Int32, to sink: SnapshotSink) throws(SnapshotError) {
        // zlib declares `next_in` mutable but never writes through it.
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        while true {
            var status = Z_OK
            let produced = output.withUnsafeMutableBytes { buffer in
                stream.pointee.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(buffer.count)
                status = deflate(stream, flush)
                let produced = buffer.count - Int(stream.pointee.avail_out)
                stream.pointee.next_out = nil
                stream.pointee.avail_out = 0
                return produced
            }
            // Z_BUF_ERROR only says that no progress was possible, which a
            // full output buffer explains; it is not an error.
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw .compression(reason: "deflate failed: \(ZStream.message(status, stream.pointee.msg))")
            }
            if produced > 0 {
                try output.withUnsafeBytesTyped { (buffer) throws(SnapshotError) in
                    try sink(UnsafeRawBufferPointer(rebasing: buffer[..<produced]))
                }
            }
            // Output space left over means zlib consumed all the input (and,
            // when finishing, wrote the end of the member).
            if produced < output.count && (flush != Z_FINISH || status == Z_STREAM_END) { return }
        }
    }
}

/// Decompresses gzip input pulled from a source. Several members in a row
/// (as `cat a.gz b.gz` makes) decompress to their concatenation, as with
/// `gunzip`; anything else after a member is an error.
final class GzipDecompressor {
    /// What one ``read(into:pulling:)`` produced.
    enum Outcome: Equatable {
        /// This many bytes, more than zero.
        case bytes(Int)
        /// The end of the input, right after a complete member.
        case end
        /// The input ended inside a member.
        case truncated
    }

    private let owner: ZStream
    private var stream: UnsafeMutablePointer<z_stream> { owner.stream }
    /// The most compressed bytes pulled from the source at a time.
    private static let largestReadSize = 256 << 10
    /// Compressed bytes pulled from the source; `input[inputStart..<inputEnd]`
    /// are not consumed yet. It starts at ``SnapshotFormat/firstReadSize``
    /// bytes and doubles after each pull that filled it, up to ``largestReadSize``.
    private var input: [UInt8]
    private var inputStart = 0
    private var inputEnd: Int
    private var sourceEnded = false
    private var memberEnded = false

    /// A decompressor whose input starts with `firstBytes` (bytes already
    /// taken from the source to recognise gzip) and goes on with the source.
    ///
    /// - Throws: ``SnapshotError/compression(reason:)`` when zlib cannot start.
    init(firstBytes: [UInt8]) throws(SnapshotError) {
        input = firstBytes + [UInt8](repeating: 0, count: max(0, SnapshotFormat.firstReadSize - firstBytes.count))
        inputEnd = firstBytes.count
        owner = try ZStream(name: "inflateInit2", start: { whycache_inflate_init_gzip($0) }, end: { inflateEnd($0) })
    }

    /// Decompresses into `output`, pulling compressed bytes with `pull`
    /// (which fills the buffer it is given and returns the count, 0 at the
    /// end of the input) as needed.
    ///
    /// - Precondition (caller): `output` is not empty, lies in memory bound
    ///   to `UInt8` (the storage of a `[UInt8]`) and is at most 4 GiB; `pull`
    ///   returns a count within the buffer it was given.
    func read(
        into output: UnsafeMutableRawBufferPointer, pulling pull: (UnsafeMutableRawBufferPointer) throws(SnapshotError) -> Int
    ) throws(SnapshotError) -> Outcome {
        while true {
            if inputStart == inputEnd, !sourceEnded {
                if inputEnd == input.count, input.count < Self.largestReadSize {
                    // The last pull filled the buffer, so the source has more
                    // ready: take more at a time (short streams stay small).
                    input.append(contentsOf: repeatElement(0, count: input.count))
                }
                let count = try input.withUnsafeMutableBytesTyped { (buffer) throws(SnapshotError) in try pull(buffer) }
                inputStart = 0
                inputEnd = count
                sourceEnded = count == 0
            }
            if memberEnded {
                if inputStart == inputEnd { return .end }
                // More input after a member: it must be another member.
                guard inflateReset(stream) == Z_OK else { throw .compression(reason: "inflateReset failed") }
                memberEnded = false
            }
            if inputStart == inputEnd { return .truncated }
            var status = Z_OK
            let before = inputStart
            let produced = input.withUnsafeMutableBytes { buffer in
                stream.pointee.next_in = buffer.baseAddress.map { ($0 + inputStart).assumingMemoryBound(to: Bytef.self) }
                stream.pointee.avail_in = uInt(inputEnd - inputStart)
                stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(output.count)
                status = inflate(stream, Z_NO_FLUSH)
                inputStart = inputEnd - Int(stream.pointee.avail_in)
                let produced = output.count - Int(stream.pointee.avail_out)
                stream.pointee.next_in = nil
                stream.pointee.avail_in = 0
                stream.pointee.next_out = nil
                stream.pointee.avail_out = 0
                return produced
            }
            switch status {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK, Z_BUF_ERROR:
                // Z_BUF_ERROR: no progress without more input, which the next
                // turn pulls. With input and output space zlib always moves.
                guard produced > 0 || inputStart > before else {
                    throw .compression(reason: "inflate made no progress")
                }
            default:
                throw .compression(reason: "the gzip data is damaged: \(ZStream.message(status, stream.pointee.msg))")
            }
            if produced > 0 { return .bytes(produced) }
        }
    }
}

/// One `z_stream`, on the heap because zlib keeps a pointer to it in its own
/// state (it must never move), started when created and ended when released.
private final class ZStream {
    let stream: UnsafeMutablePointer<z_stream>
    private let end: (z_streamp) -> Int32

    /// Allocates a zeroed `z_stream` and starts it with `start` (the
    /// `*Init2` call `name`); `end` releases zlib's state when this is released.
    ///
    /// - Throws: ``SnapshotError/compression(reason:)`` when `start` fails.
    init(name: String, start: (z_streamp) -> Int32, end: @escaping (z_streamp) -> Int32) throws(SnapshotError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = start(stream)
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw .compression(reason: "\(name) failed: \(Self.message(status, nil))")
        }
        self.end = end
    }

    deinit {
        _ = end(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// zlib's explanation of `status`: the stream's message when it has one.
    static func message(_ status: Int32, _ text: UnsafeMutablePointer<CChar>?) -> String {
        if let text { return String(cString: text) }
        return String(cString: zError(status))
    }
}
