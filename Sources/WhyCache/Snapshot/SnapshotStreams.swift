/// Where a ``SnapshotWriter`` puts a snapshot: called with each piece of the
/// output in order (at most 1 MiB at a time), the buffer valid only during
/// the call. Throwing stops the writer, which rethrows the error.
public typealias SnapshotSink = (UnsafeRawBufferPointer) throws(SnapshotError) -> Void

/// Where a ``SnapshotReader`` or ``SnapshotRestorer`` gets a snapshot:
/// called with a buffer to fill with the next bytes of the input, it returns
/// how many it stored (at most the buffer's size), and 0 only at the end of
/// the input. Throwing stops the reader, which rethrows the error.
public typealias SnapshotSource = (UnsafeMutableRawBufferPointer) throws(SnapshotError) -> Int

/// Sinks and sources over file descriptors: files, pipes, standard input
/// and output.
public enum SnapshotStreams {
    /// A sink that writes everything to `descriptor`, continuing after short
    /// writes and `EINTR`. The descriptor stays open.
    ///
    /// - Returns: a sink that throws ``SnapshotError/io(operation:errno:)``
    ///   when `write` fails.
    public static func writing(to descriptor: Int32) -> SnapshotSink {
        { (bytes) throws(SnapshotError) in
            if let code = DescriptorIO.writeAll(bytes, to: descriptor) { throw .io(operation: "write", errno: code) }
        }
    }

    /// A source that reads from `descriptor` until the end of the file or
    /// pipe, continuing after `EINTR`. The descriptor stays open.
    ///
    /// - Returns: a source that throws ``SnapshotError/io(operation:errno:)``
    ///   when `read` fails.
    public static func reading(from descriptor: Int32) -> SnapshotSource {
        { (buffer) throws(SnapshotError) in
            switch DescriptorIO.readSome(into: buffer, from: descriptor) {
            case .success(let count): return count
            case .failure(let failure): throw .io(operation: "read", errno: failure.errno)
            }
        }
    }
}
