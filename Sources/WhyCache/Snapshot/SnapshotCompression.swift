/// How a ``SnapshotWriter`` encodes the stream it writes.
///
/// Readers need no setting: they recognise gzip input by its first two
/// bytes, so a snapshot written plain and compressed later by `gzip` reads
/// the same.
public enum SnapshotCompression: Sendable, Hashable {
    /// The snapshot stream as it is (docs/FORMAT.md section 6).
    case none
    /// A standard gzip stream (deflate with the gzip wrapper, RFC 1952)
    /// of the snapshot stream, which `gunzip` reads, compressed at zlib
    /// level `level`: 1 is the fastest, 9 the smallest, 6 zlib's default,
    /// and 0 stores without compressing.
    case gzip(level: Int)
}
