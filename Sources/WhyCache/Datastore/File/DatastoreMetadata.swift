import Glibc

/// The contents of `datastore.meta`: the file that marks a directory as a
/// file datastore and records how far history was removed.
///
/// It is a single ``FileHeader`` of kind ``FileHeader/Kind/metadata`` whose
/// value is the id of the last removed record (0 when none was removed). It is
/// only ever replaced whole, by writing a temporary file and renaming it.
struct DatastoreMetadata: Sendable, Hashable {
    /// Every record with an id up to this one was removed.
    var removedThrough: UInt64

    /// Reads the metadata file of `layout`.
    ///
    /// - Throws: ``DatastoreError/notADatastore(path:reason:)`` when the file is
    ///   missing or is not a metadata file.
    static func read(_ layout: FileDatastoreLayout) throws(DatastoreError) -> DatastoreMetadata {
        guard let file = try DatastoreFile.openIfExists(layout.metadataPath, flags: O_RDONLY) else {
            let reason = DatastoreFileSystem.isDirectory(layout.directory)
                ? "it has no datastore.meta file (use createIfMissing() to initialize it)"
                : "the directory does not exist"
            throw .notADatastore(path: layout.directory, reason: reason)
        }
        defer { file.close() }
        let bytes = try file.read(count: FileHeader.size, at: 0)
        switch FileHeader.decode(bytes, expecting: .metadata) {
        case .success(let header) where header.value == .max:
            // The last segment is never removed, so the largest id cannot
            // have been; readers compute the first retained id as this + 1.
            throw .notADatastore(path: layout.directory, reason: "datastore.meta is invalid: it says every update id was removed")
        case .success(let header):
            return DatastoreMetadata(removedThrough: header.value)
        case .failure(let failure):
            throw .notADatastore(path: layout.directory, reason: "datastore.meta is invalid: \(failure)")
        }
    }

    /// Atomically replaces the metadata file of `layout` with this metadata.
    func write(_ layout: FileDatastoreLayout, durable: Bool) throws(DatastoreError) {
        let bytes = FileHeader(kind: .metadata, value: removedThrough).encoded
        try DatastoreFileSystem.replaceAtomically(layout.metadataPath, with: bytes, durable: durable)
    }
}
