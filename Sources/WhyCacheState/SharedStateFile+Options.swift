import Glibc
import WhyCacheSupport

extension SharedStateFile {
    /// How to open or create a state file.
    public struct Options: Sendable {
        /// Whether ``SharedStateFile/open(at:options:)`` creates a missing file. Default: true.
        public var createIfMissing = true
        /// The largest size the file may reach, fixed when the file is created;
        /// each process reserves this much address space once, so that growth
        /// never remaps. Default: 64 GiB.
        public var maximumFileSize = 64 << 30
        /// How many threads (across all processes) may read at the same
        /// instant; fixed when the file is created. Default: 1024.
        public var readerSlotCount = FileLayout.defaultReaderSlotCount
        /// What a committed transaction survives; fixed when the file is created.
        public var durability = Durability.processCrash
        /// Permission bits for a new file. Default: 0o644.
        public var permissions: mode_t = 0o644
        /// The key prefixes a new file subscribes to: it keeps only the keys
        /// that start with one of them, and a transaction refuses any other
        /// key (``StateFileError/keyOutsideSubscription(path:)``). Empty (the
        /// default), or containing an empty prefix: every key.
        ///
        /// Fixed when the file is created and stored in its header, so that
        /// every process that opens the file applies the same filter; opening
        /// an existing file ignores this value (``SharedStateFile/subscribedPrefixes``
        /// tells what the file holds, and `SharedCache` refuses a file whose
        /// prefixes differ from its configuration). Stored in canonical form:
        /// sorted, without duplicates and without a prefix that another one
        /// starts. At most ``maximumSubscribedPrefixCount`` prefixes of
        /// ``maximumSubscribedPrefixBytes`` bytes together, in that form, each
        /// at most ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength`` bytes, else
        /// ``StateFileError/invalidOptions(reason:)``.
        public var subscribedPrefixes: [[UInt8]] = []

        /// The largest allowed ``maximumFileSize``: 64 TiB.
        public static let largestMaximumFileSize = 1 << 46
        /// The most prefixes ``subscribedPrefixes`` may hold (in canonical form): 64.
        public static let maximumSubscribedPrefixCount = FileLayout.maximumSubscribedPrefixCount
        /// The most bytes the prefixes of ``subscribedPrefixes`` may hold
        /// together (in canonical form): 1536.
        public static let maximumSubscribedPrefixBytes = FileLayout.maximumSubscribedPrefixBytes

        /// The guarantee a commit gives.
        public enum Durability: Sendable, Hashable {
            /// Commits survive the crash of any process, not of the machine: no
            /// `fsync`. After a restart of the machine the file refuses to open
            /// (``StateFileError/notDurableAcrossRestart(path:)``) and is rebuilt
            /// from the log. The right choice for a cache in `/dev/shm` or tmpfs.
            case processCrash
            /// Every commit is flushed with `fdatasync` before and after it is
            /// published, so it also survives an operating-system crash.
            case systemCrash
        }

        /// The default options.
        public init() {}

        /// Why these options cannot be used, or nil.
        var problem: String? {
            guard readerSlotCount >= 1, readerSlotCount <= FileLayout.maximumReaderSlotCount,
                maximumFileSize >= 1 << 20, maximumFileSize <= Options.largestMaximumFileSize
            else {
                return "reader slots must be 1...\(FileLayout.maximumReaderSlotCount) and the maximum file size 1 MiB...64 TiB"
            }
            if let problem = subscribedPrefixes.lazy.compactMap({ KeyPrefixes.lengthProblem($0.count) }).first { return problem }
            let canonical = KeyPrefixes.canonical(subscribedPrefixes)
            let bytes = canonical.reduce(0) { $0 + $1.count }
            guard canonical.count <= Options.maximumSubscribedPrefixCount, bytes <= Options.maximumSubscribedPrefixBytes else {
                return "\(canonical.count) subscribed prefixes of \(bytes) bytes exceed the limits of "
                    + "\(Options.maximumSubscribedPrefixCount) prefixes and \(Options.maximumSubscribedPrefixBytes) bytes"
            }
            return nil
        }
    }
}
