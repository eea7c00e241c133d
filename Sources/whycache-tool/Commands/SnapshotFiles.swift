import Foundation
import WhyCache

/// The file work of `snapshot` and `restore`: a snapshot written to a file
/// (or stdout) and restored from one (or stdin). `bench bootstrap` measures
/// exactly these paths.
enum SnapshotFiles {
    /// The gzip level of `snapshot --gzip` without `--level`: zlib's default.
    static let defaultGzipLevel = 6

    /// Writes the state `view` holds with `writer` to `out`: a file that
    /// appears only complete (``AtomicOutputFile``), or stdout for `-`.
    ///
    /// - Parameter progress: called after each buffer handed on, and at the end.
    /// - Returns: the header written and the sizes of the stream.
    /// - Throws: every error of ``SnapshotWriter/write(_:to:progress:)``, and
    ///   ``DatastoreError/ioFailure(operation:path:errno:)`` when the file
    ///   cannot be created, flushed or renamed.
    static func write(
        _ view: StateSnapshot, with writer: SnapshotWriter, to out: String, progress: ((SnapshotProgress) -> Void)? = nil
    ) throws -> SnapshotSummary {
        if out == "-" {
            return try writer.write(view, to: SnapshotStreams.writing(to: STDOUT_FILENO), progress: progress)
        }
        return try AtomicOutputFile.write(to: out) { descriptor in
            try writer.write(view, to: SnapshotStreams.writing(to: descriptor), progress: progress)
        }
    }

    /// Restores the snapshot (plain or gzip) in the file `from`, or stdin for
    /// `-`, with `restorer` as the state file at `statePath`.
    ///
    /// - Parameter progress: called after each buffer of input, and at the end.
    /// - Returns: the snapshot's header and sizes.
    /// - Throws: ``DatastoreError/ioFailure(operation:path:errno:)`` when the
    ///   file cannot be opened, and every error of
    ///   ``SnapshotRestorer/restore(from:at:progress:)``.
    static func restore(
        from: String, at statePath: String, with restorer: SnapshotRestorer, progress: ((SnapshotProgress) -> Void)? = nil
    ) throws -> SnapshotSummary {
        let descriptor: Int32
        if from == "-" {
            descriptor = STDIN_FILENO
        } else {
            descriptor = open(from, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw DatastoreError.ioFailure(operation: "open the snapshot", path: from, errno: errno) }
        }
        defer { if descriptor != STDIN_FILENO { close(descriptor) } }
        return try restorer.restore(from: SnapshotStreams.reading(from: descriptor), at: statePath, progress: progress)
    }
}
