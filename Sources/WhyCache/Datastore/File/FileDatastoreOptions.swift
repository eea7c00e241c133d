/// How a ``FileDatastore`` trades durability for speed and sizes its files.
public struct FileDatastoreOptions: Sendable, Hashable {
    /// When appended data is forced to stable storage.
    public enum SyncPolicy: Sendable, Hashable {
        /// `append` returns only after `fdatasync` flushed the records (and
        /// `fsync` of the directory any file it created or renamed): an
        /// acknowledged record survives a crash of the machine. The default.
        case always

        /// Data is left to the kernel to write back. An acknowledged record
        /// survives a crash of any process but may be lost if the machine
        /// crashes or loses power. Suitable for tests, caches that can be
        /// rebuilt, and benchmarks.
        case never
    }

    /// When appended data is forced to stable storage. Default: ``SyncPolicy/always``.
    public var syncPolicy: SyncPolicy

    /// The size at which the next append starts a new segment file (default
    /// 64 MiB). A segment exceeds it by at most one batch of records.
    public var segmentSize: Int

    /// The size of the reads that scan segment files (default 1 MiB).
    public var readChunkSize: Int

    /// The smallest sizes accepted for ``segmentSize`` and ``readChunkSize``.
    public static let minimumSize = 4_096

    /// Creates options.
    public init(syncPolicy: SyncPolicy = .always, segmentSize: Int = 64 << 20, readChunkSize: Int = 1 << 20) {
        self.syncPolicy = syncPolicy
        self.segmentSize = segmentSize
        self.readChunkSize = readChunkSize
    }

    /// Checks that the options can be used.
    func validate() throws(DatastoreError) {
        guard segmentSize >= Self.minimumSize else {
            throw .invalidConfiguration(reason: "segmentSize \(segmentSize) is below the minimum of \(Self.minimumSize) bytes")
        }
        guard readChunkSize >= Self.minimumSize else {
            throw .invalidConfiguration(reason: "readChunkSize \(readChunkSize) is below the minimum of \(Self.minimumSize) bytes")
        }
    }
}
