import Glibc

/// A file of the file datastore: its system calls fail with
/// ``DatastoreError/ioFailure(operation:path:errno:)``.
typealias DatastoreFile = FileDescriptor<DatastoreError>

/// The directory-level system calls of the file datastore, failing the same way.
typealias DatastoreFileSystem = FileSystem<DatastoreError>

extension FileSystem where Failure == DatastoreError {
    /// Writes `bytes` to a new temporary file next to `path`, flushes it when
    /// `durable`, and renames it over `path`: readers see the old file or the
    /// new one, never a mix.
    static func replaceAtomically(_ path: String, with bytes: [UInt8], durable: Bool) throws(DatastoreError) {
        let temporary = FileDatastoreLayout.temporaryPath(for: path)
        let file = try DatastoreFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL)
        do {
            defer { file.close() }
            try file.write(bytes, at: 0)
            if durable { try file.synchronizeData() }
        } catch {
            try? remove(temporary)
            throw error
        }
        do {
            try rename(temporary, to: path)
        } catch {
            try? remove(temporary)
            throw error
        }
        if durable { try synchronizeDirectory(parentDirectory(of: path)) }
    }
}
