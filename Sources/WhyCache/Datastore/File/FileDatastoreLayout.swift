import Glibc

/// The names of the files in a file datastore's directory.
///
/// ```text
/// <directory>/
///   datastore.meta                      identity and first retained id (FileHeader, kind "WCLOGDIR")
///   append.lock                         flock'ed by appenders (empty)
///   maintenance.lock                    flock'ed by the maintenance lock holder (empty)
///   segment-<first id, 20 digits>.log   segment files, append-only
///   checkpoint-<id, 20 digits>.ckpt     published checkpoints
///   *.tmp-<pid>-<random>                files being written; never read
/// ```
///
/// Ids in names are zero-padded to 20 decimal digits so that names sort like
/// the ids they hold. `docs/FORMAT.md` describes every file byte by byte.
struct FileDatastoreLayout: Sendable {
    /// The datastore's directory.
    let directory: String

    /// The metadata file, whose presence marks an initialized datastore.
    var metadataPath: String { directory + "/datastore.meta" }

    /// The lock file that serializes appends across processes.
    var appendLockPath: String { directory + "/append.lock" }

    /// The lock file behind ``Datastore/acquireMaintenanceLock()``.
    var maintenanceLockPath: String { directory + "/maintenance.lock" }

    /// The segment file whose first record has id `firstUpdateID`.
    func segmentPath(_ firstUpdateID: UInt64) -> String {
        "\(directory)/\(Self.segmentPrefix)\(Self.paddedID(firstUpdateID))\(Self.segmentSuffix)"
    }

    /// The published checkpoint at `updateID`.
    func checkpointPath(_ updateID: UInt64) -> String {
        "\(directory)/\(Self.checkpointPrefix)\(Self.paddedID(updateID))\(Self.checkpointSuffix)"
    }

    /// The first ids of the segment files in the directory, ascending.
    func segmentIDs() throws(DatastoreError) -> [UInt64] {
        try DatastoreFileSystem.contents(of: directory).compactMap { Self.id(in: $0, prefix: Self.segmentPrefix, suffix: Self.segmentSuffix) }.sorted()
    }

    /// The update ids of the published checkpoints in the directory, ascending.
    func checkpointIDs() throws(DatastoreError) -> [UInt64] {
        try DatastoreFileSystem.contents(of: directory).compactMap { Self.id(in: $0, prefix: Self.checkpointPrefix, suffix: Self.checkpointSuffix) }.sorted()
    }

    /// The temporary files in the directory (full paths).
    func temporaryFiles() throws(DatastoreError) -> [String] {
        try DatastoreFileSystem.contents(of: directory).filter { $0.contains(Self.temporaryMarker) }.map { directory + "/" + $0 }
    }

    /// Whether `name` is one of the names a file datastore creates.
    static func isDatastoreFile(_ name: String) -> Bool {
        name == "datastore.meta" || name == "append.lock" || name == "maintenance.lock"
            || name.contains(temporaryMarker)
            || id(in: name, prefix: segmentPrefix, suffix: segmentSuffix) != nil
            || id(in: name, prefix: checkpointPrefix, suffix: checkpointSuffix) != nil
    }

    /// A fresh temporary name next to `path`, unique to this process.
    static func temporaryPath(for path: String) -> String {
        "\(path)\(temporaryMarker)\(Processes.currentID)-\(UInt64.random(in: 0...UInt64.max))"
    }

    static let segmentPrefix = "segment-"
    static let segmentSuffix = ".log"
    static let checkpointPrefix = "checkpoint-"
    static let checkpointSuffix = ".ckpt"
    static let temporaryMarker = ".tmp-"

    private static func paddedID(_ id: UInt64) -> String {
        let digits = String(id)
        return String(repeating: "0", count: 20 - digits.count) + digits
    }

    private static func id(in name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix),
              name.utf8.count == prefix.utf8.count + 20 + suffix.utf8.count
        else { return nil }
        return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
    }
}

extension FileDatastoreLayout {
    /// The id of the process that created the temporary file at `path`.
    static func owner(ofTemporaryFile path: String) -> pid_t? {
        // The name ends in "<marker><pid>-<random>".
        let parts = path.split(separator: "-")
        guard parts.count >= 3, path.contains(temporaryMarker) else { return nil }
        return pid_t(parts[parts.count - 2])
    }
}
